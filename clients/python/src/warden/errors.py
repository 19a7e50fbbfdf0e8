"""Exceptions: one per class of HTTP status, each carrying the problem
document (RFC 9457) Warden answered with, and the offline verifier's."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx

__all__ = [
    "WardenError",
    "BadRequest",
    "AuthError",
    "IntentDenied",
    "NotFound",
    "Conflict",
    "PayloadTooLarge",
    "Unprocessable",
    "RateLimited",
    "ServerError",
    "VerificationError",
    "error_from_response",
]


class WardenError(Exception):
    """A non-2xx answer from Warden.

    ``status`` is the HTTP status, ``code`` the problem's stable ``code``
    (``http_<status>`` when the body was not a problem document),
    ``message`` its ``detail``, ``problem`` the whole problem body,
    ``pointer`` the JSON Pointer of a refused member (when given),
    ``errors`` the list of faults (when given) and ``retry_after`` the
    seconds of a ``Retry-After`` header (when given).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problem: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.problem: dict[str, Any] = problem if problem is not None else {}
        self.retry_after = retry_after
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method and url else ""
        super().__init__(f"{status} {code}: {message}{where}")

    @property
    def detail(self) -> str:
        return self.message

    @property
    def pointer(self) -> str | None:
        p = self.problem.get("pointer")
        return p if isinstance(p, str) else None

    @property
    def errors(self) -> list[Any]:
        e = self.problem.get("errors")
        return e if isinstance(e, list) else []


class BadRequest(WardenError):
    """400: the request is malformed or refused for what it holds."""


class AuthError(WardenError):
    """401 or 403: no valid token, or the token may not do this."""


class IntentDenied(AuthError):
    """403 ``intent_denied``: the kernel policy denied a tool call."""

    @property
    def decision_id(self) -> str | None:
        for e in self.errors:
            if isinstance(e, dict) and isinstance(e.get("decision_id"), str):
                return str(e["decision_id"])
        d = self.problem.get("decision_id")
        return d if isinstance(d, str) else None

    @property
    def reasons(self) -> list[str]:
        out: list[str] = []
        for e in self.errors:
            if isinstance(e, str):
                out.append(e)
            elif isinstance(e, dict):
                r = e.get("reasons")
                if isinstance(r, list):
                    out.extend(str(x) for x in r)
                elif isinstance(e.get("reason"), str):
                    out.append(e["reason"])
        return out


class NotFound(WardenError):
    """404."""


class Conflict(WardenError):
    """409."""


class PayloadTooLarge(WardenError):
    """413."""


class Unprocessable(WardenError):
    """422: the document is understood but refused (bundle faults, policy
    time-outs, invalid audit events, ...)."""


class RateLimited(WardenError):
    """429: try again after ``retry_after`` seconds."""


class ServerError(WardenError):
    """5xx. A 503 usually carries ``retry_after``; nothing was acknowledged."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _class_for(status: int, code: str) -> type[WardenError]:
    if status in (401, 403):
        return IntentDenied if code == "intent_denied" else AuthError
    if status == 400:
        return BadRequest
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status == 413:
        return PayloadTooLarge
    if status == 422:
        return Unprocessable
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return WardenError


def error_from_response(response: httpx.Response, body: bytes | None = None) -> WardenError:
    """The exception for a non-2xx response (its body must have been read,
    or be given as ``body``)."""
    raw = body if body is not None else response.content
    problem: dict[str, Any] | None = None
    try:
        parsed = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict):
        problem = parsed
    status = response.status_code
    code = f"http_{status}"
    message = response.reason_phrase or "error"
    if problem is not None:
        if isinstance(problem.get("code"), str):
            code = problem["code"]
        if isinstance(problem.get("detail"), str):
            message = problem["detail"]
        elif isinstance(problem.get("title"), str):
            message = problem["title"]
    elif raw:
        message = raw[:500].decode("utf-8", "replace")
    cls = _class_for(status, code)
    method: str | None = None
    url: str | None = None
    try:
        method, url = response.request.method, str(response.request.url)
    except RuntimeError:  # a Response built without a request
        pass
    return cls(
        status,
        code,
        message,
        problem,
        retry_after=_retry_after(response.headers.get("retry-after")),
        method=method,
        url=url,
    )


class VerificationError(Exception):
    """Offline verification failed.

    ``index`` is the ledger index of the entry (or receipt) at fault when
    there is one, ``line`` the export file's line number (from 1) when
    verifying a file, ``reason`` what failed.
    """

    def __init__(self, reason: str, *, index: int | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.index = index
        self.line = line
        where = []
        if index is not None:
            where.append(f"entry {index}")
        if line is not None:
            where.append(f"(line {line})" if index is not None else f"line {line}")
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)
