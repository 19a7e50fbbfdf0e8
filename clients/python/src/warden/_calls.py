"""Every route as a description of its request and how to read its answer,
shared by the synchronous and the asynchronous client."""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx

from .models import Decision

T = TypeVar("T")


class _Unset:
    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: Marks an argument left out (distinct from ``None``, which is JSON null).
UNSET: Any = _Unset()

Verdict = Literal["approve", "reject"]
ReportStatus = Literal["started", "succeeded", "failed"]


def dumps(value: Any) -> bytes:
    """Compact JSON; integers exactly as Python holds them, no NaN."""
    return _json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


@dataclass
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, str] | None = None
    body: bytes | None = None
    content_type: str | None = None

    def headers(self) -> dict[str, str]:
        return {"content-type": self.content_type} if self.content_type else {}


def seg(value: str) -> str:
    """One path segment, percent-encoded."""
    return quote(str(value), safe="")


def as_json(r: httpx.Response) -> Any:
    if not r.content:
        return None
    return r.json()


def as_dict(r: httpx.Response) -> dict[str, Any]:
    v = as_json(r)
    if not isinstance(v, dict):
        raise ValueError(f"expected a JSON object from {r.request.method} {r.request.url}, got {type(v).__name__}")
    return v


def as_list(r: httpx.Response) -> list[Any]:
    v = as_json(r)
    if not isinstance(v, list):
        raise ValueError(f"expected a JSON array from {r.request.method} {r.request.url}, got {type(v).__name__}")
    return v


def as_none(r: httpx.Response) -> None:
    return None


def as_bytes(r: httpx.Response) -> bytes:
    return r.content


def json_call(method: str, path: str, body: Any, parse: Callable[[httpx.Response], T], params: dict[str, str] | None = None) -> Call[T]:
    return Call(method, path, parse, params=params, body=dumps(body), content_type="application/json")


def get(path: str, parse: Callable[[httpx.Response], T], params: Mapping[str, Any] | None = None) -> Call[T]:
    clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
    return Call("GET", path, parse, params=clean or None)


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def drop_unset(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not UNSET}


def drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v is not UNSET}


# ---- decisions --------------------------------------------------------------


def decide(
    path: str,
    input: Any,
    context: Mapping[str, Any] | None,
    bundle: str | Mapping[str, Any] | None,
    revision: str | None,
) -> Call[Decision]:
    body: dict[str, Any] = {"path": path}
    if input is not UNSET:
        body["input"] = input
    if context is not None:
        body["context"] = dict(context)
    if bundle is not None:
        pin = {"name": bundle} if isinstance(bundle, str) else dict(bundle)
        if revision is not None:
            pin["revision"] = revision
        body["bundle"] = pin
    return json_call("POST", "/v1/decisions", body, lambda r: Decision.from_response(as_dict(r)))


def data(path: str, input: Any, pretty: bool, metrics: bool, provenance: bool) -> Call[dict[str, Any]]:
    body = {} if input is None or input is UNSET else {"input": input}
    params = {k: "true" for k, on in (("pretty", pretty), ("metrics", metrics), ("provenance", provenance)) if on}
    p = quote(path.strip("/"), safe="/")
    return json_call("POST", f"/v1/data/{p}", body, as_dict, params or None)


def replay(decision_id: str) -> Call[dict[str, Any]]:
    return Call("POST", f"/v1/decisions/{seg(decision_id)}/replay", as_dict)


def impact(
    bundle: str,
    revision: str,
    filter: Mapping[str, Any] | None,
    after: int | None,
    limit: int | None,
    max_scan: int | None,
) -> Call[dict[str, Any]]:
    body = drop_none(
        {
            "bundle": bundle,
            "revision": revision,
            "filter": dict(filter) if filter is not None else None,
            "after": after,
            "limit": limit,
            "max_scan": max_scan,
        }
    )
    return json_call("POST", "/v1/impact", body, as_dict)


# ---- audit ------------------------------------------------------------------


def audit(event: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return json_call("POST", "/v1/audit/events", dict(event), as_dict)


def audit_batch(events: Sequence[Mapping[str, Any]]) -> Call[dict[str, Any]]:
    return json_call("POST", "/v1/audit/events", [dict(e) for e in events], as_dict)


def audit_feed(after: int | None, limit: int | None) -> Call[dict[str, Any]]:
    return get("/v1/audit/events", as_dict, {"after": after, "limit": limit})


# ---- bundles ----------------------------------------------------------------


def upload_bundle(data: bytes, name: str) -> Call[dict[str, Any]]:
    return Call("PUT", f"/v1/bundles/{seg(name)}", as_dict, body=bytes(data), content_type="application/gzip")


def activate_bundle(name: str, revision: str, force: bool) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {"revision": revision}
    if force:
        body["force"] = True
    return json_call("POST", f"/v1/bundles/{seg(name)}/activate", body, as_dict)


def rollback_bundle(name: str, revision: str | None, force: bool) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {}
    if revision is not None:
        body["revision"] = revision
    if force:
        body["force"] = True
    return json_call("POST", f"/v1/bundles/{seg(name)}/rollback", body, as_dict)


def list_bundles() -> Call[list[dict[str, Any]]]:
    return get("/v1/bundles", as_list)


def get_bundle(name: str) -> Call[dict[str, Any]]:
    return get(f"/v1/bundles/{seg(name)}", as_dict)


def bundle_version(name: str, revision: str) -> Call[dict[str, Any]]:
    return get(f"/v1/bundles/{seg(name)}/revisions/{seg(revision)}", as_dict)


def bundle_content(name: str, revision: str) -> Call[bytes]:
    return get(f"/v1/bundles/{seg(name)}/revisions/{seg(revision)}/content", as_bytes)


# ---- ledger -----------------------------------------------------------------


def ledger_keys() -> Call[list[dict[str, Any]]]:
    return get("/v1/ledger/keys", as_list)


def checkpoint() -> Call[dict[str, Any]]:
    return get("/v1/ledger/checkpoint", as_dict)


def ledger_entry(index: int, tree_size: int | None) -> Call[dict[str, Any]]:
    return get(f"/v1/ledger/entries/{int(index)}", as_dict, {"tree_size": tree_size})


def consistency(first: int, second: int) -> Call[dict[str, Any]]:
    return get("/v1/ledger/consistency", as_dict, {"from": first, "to": second})


def export(from_index: int | None, to_index: int | None) -> Call[bytes]:
    return get("/v1/ledger/export", as_bytes, {"from": from_index, "to": to_index})


def rotate_ledger_key() -> Call[dict[str, Any]]:
    return Call("POST", "/v1/ledger/keys/rotate", as_dict)


# ---- tokens, tenants, settings -------------------------------------------------


def create_token(
    name: str,
    roles: Sequence[str],
    subject: str | None,
    agent_ids: Sequence[str] | None,
    runner_ids: Sequence[str] | None,
    ttl_seconds: int | None,
    expires_at: str | None,
) -> Call[dict[str, Any]]:
    body = drop_none(
        {
            "name": name,
            "roles": list(roles),
            "subject": subject,
            "agent_ids": list(agent_ids) if agent_ids is not None else None,
            "runner_ids": list(runner_ids) if runner_ids is not None else None,
            "ttl_seconds": ttl_seconds,
            "expires_at": expires_at,
        }
    )
    return json_call("POST", "/v1/tokens", body, as_dict)


def list_tokens() -> Call[list[dict[str, Any]]]:
    return get("/v1/tokens", as_list)


def whoami() -> Call[dict[str, Any]]:
    return get("/v1/whoami", as_dict)


def revoke_token(token_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/tokens/{seg(token_id)}", as_none)


def create_tenant(name: str) -> Call[dict[str, Any]]:
    return json_call("POST", "/v1/tenants", {"name": name}, as_dict)


def health() -> Call[dict[str, Any]]:
    return get("/health", as_dict)


# ---- MCP gateway ------------------------------------------------------------


def put_mcp_upstream(name: str, url: str | None, stdio: str | None, bearer_token: str | None) -> Call[dict[str, Any]]:
    body = drop_none({"url": url, "stdio": stdio, "bearer_token": bearer_token})
    return json_call("PUT", f"/v1/mcp/upstreams/{seg(name)}", body, as_dict)


def mcp_upstreams() -> Call[list[dict[str, Any]]]:
    return get("/v1/mcp/upstreams", as_list)


def delete_mcp_upstream(name: str) -> Call[None]:
    return Call("DELETE", f"/v1/mcp/upstreams/{seg(name)}", as_none)


def mcp_upstream_tools(name: str) -> Call[list[dict[str, Any]]]:
    return get(f"/v1/mcp/upstreams/{seg(name)}/tools", as_list)


def accept_mcp_tool(name: str, tool: str) -> Call[dict[str, Any]]:
    return Call("POST", f"/v1/mcp/upstreams/{seg(name)}/tools/{seg(tool)}/accept", as_dict)


# ---- kernel -----------------------------------------------------------------


def create_execution(
    agent_id: str, input: Any, labels: Mapping[str, Any] | None, timeout_seconds: int | None
) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {"agent_id": agent_id}
    if input is not UNSET and input is not None:
        body["input"] = input
    if labels is not None:
        body["labels"] = dict(labels)
    if timeout_seconds is not None:
        body["timeout_seconds"] = timeout_seconds
    return json_call("POST", "/v0/executions", body, as_dict)


def executions(state: str | None, agent_id: str | None, limit: int | None) -> Call[list[dict[str, Any]]]:
    return get("/v0/executions", as_list, {"state": state, "agent_id": agent_id, "limit": limit})


def execution(execution_id: str) -> Call[dict[str, Any]]:
    return get(f"/v0/executions/{seg(execution_id)}", as_dict)


def execution_history(execution_id: str) -> Call[dict[str, Any]]:
    return get(f"/v0/executions/{seg(execution_id)}/history", as_dict)


def cancel_execution(execution_id: str, reason: str | None) -> Call[dict[str, Any]]:
    body = {} if reason is None else {"reason": reason}
    return json_call("POST", f"/v0/executions/{seg(execution_id)}/cancel", body, as_dict)


def signal_execution(execution_id: str, payload: Mapping[str, Any] | None) -> Call[dict[str, Any]]:
    body = {} if payload is None else {"payload": dict(payload)}
    return json_call("POST", f"/v0/executions/{seg(execution_id)}/signal", body, as_dict)


def intent(execution_id: str, type: str, fields: Mapping[str, Any]) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {"execution_id": execution_id, "type": type}
    body.update(drop_unset(fields))
    return json_call("POST", "/v0/agents/intent", body, as_dict)


def _report(
    step_id: str, status: str, output: Any, error: Any, retryable: bool | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"step_id": step_id, "status": status}
    if output is not None:
        body["output"] = output
    if error is not None:
        body["error"] = error
    if retryable is not None:
        body["retryable"] = retryable
    return body


def step_result(
    step_id: str, status: str, output: Any, error: Any, retryable: bool | None
) -> Call[dict[str, Any]]:
    return json_call("POST", "/v0/agents/step-result", _report(step_id, status, output, error, retryable), as_dict)


def runner_result(
    runner_id: str, step_id: str, status: str, output: Any, error: Any, retryable: bool | None
) -> Call[dict[str, Any]]:
    return json_call(
        "POST",
        f"/v0/runners/{seg(runner_id)}/results",
        _report(step_id, status, output, error, retryable),
        as_dict,
    )


def approvals() -> Call[list[dict[str, Any]]]:
    def parse(r: httpx.Response) -> list[dict[str, Any]]:
        body = as_dict(r)
        waiting = body.get("waiting", [])
        return list(waiting) if isinstance(waiting, list) else []

    return get("/v0/approvals", parse)


def review(execution_id: str, step_id: str, decision: str, reason: str, args_hash: str) -> Call[dict[str, Any]]:
    body = {"step_id": step_id, "decision": decision, "reason": reason, "args_hash": args_hash}
    return json_call("POST", f"/v0/executions/{seg(execution_id)}/approvals", body, as_dict)


def agent_stream_params(agent_id: str | None) -> dict[str, str]:
    return {"agent_id": agent_id} if agent_id is not None else {}


def runner_stream_params(
    runner_id: str | None, tools: str | Sequence[str], non_idempotent: str | Sequence[str] | None
) -> dict[str, str]:
    params: dict[str, str] = {"tools": tools if isinstance(tools, str) else ",".join(tools)}
    if runner_id is not None:
        params["runner_id"] = runner_id
    if non_idempotent:
        params["non_idempotent"] = (
            non_idempotent if isinstance(non_idempotent, str) else ",".join(non_idempotent)
        )
    return params
