-- wrk -t1 -c64 -d10s --latency -s benches/wrk-events.lua http://127.0.0.1:8181
-- with WARDEN_TOKEN (orchestrator) set. WARDEN_BATCH events per request
-- (default 1); events/s = requests/s × WARDEN_BATCH.
wrk.method = "POST"
wrk.path = "/v1/audit/events"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("WARDEN_TOKEN")
local n = tonumber(os.getenv("WARDEN_BATCH") or "1")
local event = '{"timestamp":"2026-04-15T09:23:41.842Z","workflow_id":"bess-commissioning-wf-2026-04-15",'
  .. '"activity_id":"retrieve_acc_test_data","agent_id":"retrieval-agent-v1","action":"document_read",'
  .. '"resource":{"connector":"acc","project_id":"proj_abc123","document_id":"doc_xyz789","document_name":"BESS-TR-001-TestSheet-Rev2.pdf"},'
  .. '"rbac_scope":"engineering.commissioning","user_context":{"initiated_by":"user_j_morrison","on_behalf_of":"project_alpha"},'
  .. '"result":"success","latency_ms":342}'
local events = {}
for i = 1, n do events[i] = event end
wrk.body = "[" .. table.concat(events, ",") .. "]"

response = function(status, headers, body)
  if status ~= 201 then
    io.write(status, " ", body, "\n")
    wrk.thread:stop()
  end
end
