"""Typed views of Warden's answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .sse import Event

__all__ = ["Decision", "Event"]


@dataclass(frozen=True)
class Decision:
    """The answer of ``POST /v1/decisions``.

    ``allow`` is set when the result is, or holds, a boolean ``allow``;
    ``reasons`` when it holds ``reason``/``reasons`` (sorted); ``result`` is
    the policy's result (``None`` when undefined); ``bundle`` the exact
    version that answered (``name``, ``revision``, ``digest``); ``receipt``
    where the decision is in the evidence ledger, with its inclusion proof
    (verify it offline with :func:`warden.verify.verify_receipt`); ``raw``
    the whole response.
    """

    decision_id: str
    allow: bool | None
    reasons: list[str]
    result: Any
    bundle: dict[str, Any]
    receipt: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> Decision:
        raw = dict(body)
        allow = raw.get("allow")
        reasons = raw.get("reasons")
        bundle = raw.get("bundle")
        receipt = raw.get("receipt")
        return cls(
            decision_id=str(raw.get("decision_id", "")),
            allow=allow if isinstance(allow, bool) else None,
            reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
            result=raw.get("result"),
            bundle=dict(bundle) if isinstance(bundle, Mapping) else {},
            receipt=dict(receipt) if isinstance(receipt, Mapping) else None,
            raw=raw,
        )

    @property
    def path(self) -> str | None:
        v = self.raw.get("path")
        return v if isinstance(v, str) else None

    @property
    def timestamp(self) -> str | None:
        v = self.raw.get("timestamp")
        return v if isinstance(v, str) else None

    @property
    def captured(self) -> dict[str, Any]:
        v = self.raw.get("captured")
        return dict(v) if isinstance(v, Mapping) else {}

    @property
    def context(self) -> dict[str, Any] | None:
        v = self.raw.get("context")
        return dict(v) if isinstance(v, Mapping) else None

    @property
    def defined(self) -> bool:
        """Whether the policy's result was defined."""
        return "result" in self.raw
