-- wrk -t1 -c64 -d10s --latency -s benches/wrk-decision.lua http://127.0.0.1:8181
-- with WARDEN_TOKEN set and the seed bundle active. WARDEN_PATH picks the path.
wrk.method = "POST"
wrk.path = "/v1/decisions"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("WARDEN_TOKEN")
local path = os.getenv("WARDEN_PATH") or "agento/commissioning/routing/allow"
wrk.body = '{"path":"' .. path .. '","input":{"procore":{"punch_items_open_bess":[]},'
  .. '"protection_settings_schedule":{"trip_voltage":{"expected":480,"tolerance":5},"trip_delay_ms":{"expected":200,"tolerance":10}},'
  .. '"test_results":[{"parameter":"trip_voltage","value":483},{"parameter":"trip_delay_ms","value":205}]}}'

-- Any answer but 200 is printed and stops the run.
response = function(status, headers, body)
  if status ~= 200 then
    io.write(status, " ", body, "\n")
    wrk.thread:stop()
  end
end
