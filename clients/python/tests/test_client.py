"""Request shapes and error mapping, against httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import warden
from warden import build_bundle
from warden.bundle import read_bundle


class Recorder:
    def __init__(self, answers: dict[tuple[str, str], tuple[int, Any]] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answers = answers or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.answers.get((request.method, request.url.path), (200, {}))
        headers = {}
        if status >= 400:
            headers["content-type"] = "application/problem+json"
            if status in (429, 503):
                headers["retry-after"] = "7"
        if isinstance(body, bytes):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    def body(self, i: int = -1) -> Any:
        return json.loads(self.requests[i].content)


def client(rec: Recorder) -> warden.Client:
    return warden.Client("http://warden.test/", "wdn_secret", transport=httpx.MockTransport(rec))


DECISION = {
    "decision_id": "dec_1", "timestamp": "t", "path": "a/b", "result": {"allow": False, "reason": {"x": True}},
    "allow": False, "reasons": ["x"], "bundle": {"name": "n", "revision": "1", "digest": "d"},
    "captured": {"now_ns": 1795308111311231335}, "context": {"workflow_id": "wf"}, "timing": {}, "caller": "c",
    "receipt": {"log": "l", "index": 4},
}


def test_decide_request_and_decision() -> None:
    rec = Recorder({("POST", "/v1/decisions"): (200, DECISION)})
    d = client(rec).decide("a/b", {"n": 2**63}, context={"workflow_id": "wf"})
    req = rec.requests[0]
    assert req.headers["authorization"] == "Bearer wdn_secret"
    assert req.headers["content-type"] == "application/json"
    # integers go out digit for digit
    assert b'"n":9223372036854775808' in req.content
    assert rec.body() == {"path": "a/b", "input": {"n": 2**63}, "context": {"workflow_id": "wf"}}
    assert (d.decision_id, d.allow, d.reasons, d.bundle["revision"], d.receipt) == (
        "dec_1", False, ["x"], "1", {"log": "l", "index": 4},
    )
    assert d.raw == DECISION and d.captured["now_ns"] == 1795308111311231335 and d.defined


def test_decide_without_input_and_pinned() -> None:
    rec = Recorder({("POST", "/v1/decisions"): (200, {"decision_id": "d", "bundle": {}})})
    d = client(rec).decide("a.b", bundle="routing", revision="2")
    assert rec.body() == {"path": "a.b", "bundle": {"name": "routing", "revision": "2"}}
    assert d.allow is None and d.reasons == [] and d.receipt is None and not d.defined
    client(rec).decide("a", None)
    assert rec.body() == {"path": "a", "input": None}


def test_nan_is_refused_before_sending() -> None:
    rec = Recorder()
    with pytest.raises(ValueError):
        client(rec).decide("a", {"x": float("nan")})
    assert rec.requests == []


def test_data_api() -> None:
    rec = Recorder({("POST", "/v1/data/agento/commissioning/routing/allow"): (200, {"decision_id": "d", "result": True})})
    out = client(rec).data("/agento/commissioning/routing/allow", {"a": 1}, provenance=True)
    assert out == {"decision_id": "d", "result": True}
    assert rec.body() == {"input": {"a": 1}}
    assert rec.requests[0].url.params["provenance"] == "true"
    client(rec).data("agento/commissioning/routing/allow")
    assert rec.body() == {}


def test_audit_single_and_batch() -> None:
    rec = Recorder()
    c = client(rec)
    c.audit({"action": "x"})
    assert rec.body() == {"action": "x"}
    c.audit_batch([{"action": "x"}, {"action": "y"}])
    assert rec.body() == [{"action": "x"}, {"action": "y"}]
    assert rec.requests[-1].url.path == "/v1/audit/events"


def test_push_bundle_and_activate() -> None:
    rec = Recorder({("PUT", "/v1/bundles/kernel"): (201, {"name": "kernel", "revision": "7"}),
                    ("POST", "/v1/bundles/kernel/activate"): (200, {"active_revision": "7"})})
    out = client(rec).push_bundle(b"\x1f\x8b...", "kernel", activate=True, force=True)
    put, post = rec.requests
    assert put.headers["content-type"] == "application/gzip" and put.content == b"\x1f\x8b..."
    assert json.loads(post.content) == {"revision": "7", "force": True}
    assert out["activation"] == {"active_revision": "7"}


def test_bundle_routes() -> None:
    rec = Recorder({("GET", "/v1/bundles"): (200, [{"name": "k"}])})
    c = client(rec)
    assert c.list_bundles() == [{"name": "k"}]
    c.activate_bundle("k", "2")
    assert rec.body() == {"revision": "2"}
    c.rollback_bundle("k")
    assert rec.body() == {}
    c.impact("k", "3", filter={"path": "a/b"}, max_scan=10)
    assert rec.requests[-1].url.path == "/v1/impact"
    assert rec.body() == {"bundle": "k", "revision": "3", "filter": {"path": "a/b"}, "max_scan": 10}


def test_ledger_routes() -> None:
    rec = Recorder({("GET", "/v1/ledger/keys"): (200, [{"verifier": "k+1+x"}]),
                    ("GET", "/v1/ledger/export"): (200, b'{"format":"x"}\n')})
    c = client(rec)
    assert c.verifier_keys() == ["k+1+x"]
    assert c.export(from_index=2, to_index=5) == b'{"format":"x"}\n'
    assert dict(rec.requests[-1].url.params) == {"from": "2", "to": "5"}
    c.replay("dec/1")
    assert rec.requests[-1].url.raw_path == b"/v1/decisions/dec%2F1/replay"


def test_kernel_routes() -> None:
    rec = Recorder({("GET", "/v0/approvals"): (200, {"waiting": [{"execution_id": "e"}]})})
    c = client(rec)
    c.create_execution("claims-agent", {"claim": "C-1"}, labels={"env": "prod"})
    assert rec.body() == {"agent_id": "claims-agent", "input": {"claim": "C-1"}, "labels": {"env": "prod"}}
    c.intent("exe_1", "invoke_tool", tool="payments.refund", arguments={"amount": 1500}, remote=False)
    assert rec.body() == {"execution_id": "exe_1", "type": "invoke_tool", "tool": "payments.refund",
                          "arguments": {"amount": 1500}, "remote": False}
    c.step_result("stp_1", "succeeded", output={"refund": "R-9"})
    assert rec.body() == {"step_id": "stp_1", "status": "succeeded", "output": {"refund": "R-9"}}
    c.runner_result("runner-1", "stp_2", "failed", error={"message": "x"}, retryable=True)
    assert rec.requests[-1].url.path == "/v0/runners/runner-1/results"
    assert rec.body() == {"step_id": "stp_2", "status": "failed", "error": {"message": "x"}, "retryable": True}
    assert c.approvals() == [{"execution_id": "e"}]
    c.review("exe_1", "stp_1", "approve", "checked", "abc")
    assert rec.requests[-1].url.path == "/v0/executions/exe_1/approvals"
    assert rec.body() == {"step_id": "stp_1", "decision": "approve", "reason": "checked", "args_hash": "abc"}
    c.cancel_execution("exe_1", "no longer needed")
    assert rec.body() == {"reason": "no longer needed"}
    c.create_token("alice", ["reviewer"], subject="alice@bank.example")
    assert rec.body() == {"name": "alice", "roles": ["reviewer"], "subject": "alice@bank.example"}


@pytest.mark.parametrize(
    "status,code,cls",
    [
        (400, "number_out_of_range", warden.BadRequest),
        (401, "invalid_token", warden.AuthError),
        (403, "forbidden", warden.AuthError),
        (403, "intent_denied", warden.IntentDenied),
        (404, "unknown_bundle", warden.NotFound),
        (409, "revision_exists", warden.Conflict),
        (413, "bundle_too_large", warden.PayloadTooLarge),
        (422, "rego_compile_error", warden.Unprocessable),
        (429, "too_many_streams", warden.RateLimited),
        (500, "internal", warden.ServerError),
        (503, "policy_busy", warden.ServerError),
    ],
)
def test_problem_maps_to_exception(status: int, code: str, cls: type[warden.WardenError]) -> None:
    problem = {"type": f"urn:warden:problem:{code}", "title": "T", "status": status, "code": code,
               "detail": f"what to fix for {code}", "pointer": "/input/f",
               "errors": [{"decision_id": "dec_9", "reason": "rule r: no"}]}
    rec = Recorder({("POST", "/v1/decisions"): (status, problem)})
    with pytest.raises(warden.WardenError) as e:
        client(rec).decide("a", {})
    err = e.value
    assert type(err) is cls
    assert (err.status, err.code, err.message, err.problem) == (status, code, f"what to fix for {code}", problem)
    assert err.pointer == "/input/f"
    assert code in str(err) and str(status) in str(err)
    if status in (429, 503):
        assert err.retry_after == 7.0
    if isinstance(err, warden.IntentDenied):
        assert err.decision_id == "dec_9" and err.reasons == ["rule r: no"]


def test_non_problem_error_body() -> None:
    rec = Recorder({("GET", "/v1/bundles"): (502, b"<html>bad gateway</html>")})
    with pytest.raises(warden.ServerError) as e:
        client(rec).list_bundles()
    assert e.value.code == "http_502" and "bad gateway" in e.value.message and e.value.problem == {}


async def test_async_client_maps_errors_and_decides() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/decisions":
            return httpx.Response(200, json=DECISION)
        return httpx.Response(401, json={"code": "unauthenticated", "detail": "no token", "status": 401})

    async with warden.AsyncClient("http://w", "t", transport=httpx.MockTransport(handler)) as c:
        d = await c.decide("a/b", {})
        assert d.decision_id == "dec_1"
        with pytest.raises(warden.AuthError) as e:
            await c.list_bundles()
        assert e.value.code == "unauthenticated"


def test_build_bundle_is_reproducible() -> None:
    files = {"policy.rego": "package a.b\nallow := true\n", "data.json": b"{}", ".manifest": '{"roots":["a"]}'}
    one = build_bundle(files, revision="1")
    assert one == build_bundle(files, revision="1")
    assert one[:4] == b"\x1f\x8b\x08\x00"
    back = read_bundle(one)
    assert list(back) == ["policy.rego", "data.json", ".manifest"]
    assert json.loads(back[".manifest"]) == {"roots": ["a"], "revision": "1"}
    with pytest.raises(ValueError):
        build_bundle({"data.json": b"{}"})
    with pytest.raises(ValueError):
        build_bundle({"../x.rego": b""})
