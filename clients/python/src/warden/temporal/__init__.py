"""Warden for Temporal: a policy decision before every activity, reviews
that pause the workflow without holding a worker, and Temporal's ids in
Warden's evidence.

    from warden.temporal import WardenPlugin, WardenSettings

    worker = Worker(client, task_queue="claims", workflows=[...], activities=[...],
                    plugins=[WardenPlugin(WardenSettings(url=..., orchestrator_token=...,
                                                         agent_token=...))])

See README.md beside this file for the design, the ways from a Temporal
workflow to its Warden decisions and back, and the figures.
"""

from ._common import (
    CHECK,
    DECISIONS_QUERY,
    DENIED,
    END_EXECUTION,
    ENDED,
    EXPIRED,
    HEADER,
    MEMO_KEY,
    REJECTED,
    REPORT_STEP,
    REVIEW_SIGNAL,
    REVIEW_STATE,
    START_EXECUTION,
    WorkflowSettings,
    agent_id_of,
    tool_name_of,
)
from ._http import WardenHTTP, WardenHTTPError
from ._plugin import WardenPlugin, hold_stream
from ._worker import WardenInterceptor, WardenRuntime, WardenSettings, event_id

__all__ = [
    "WardenPlugin",
    "WardenSettings",
    "WorkflowSettings",
    "WardenInterceptor",
    "WardenRuntime",
    "WardenHTTP",
    "WardenHTTPError",
    "hold_stream",
    "event_id",
    "agent_id_of",
    "tool_name_of",
    "DENIED",
    "REJECTED",
    "EXPIRED",
    "ENDED",
    "HEADER",
    "MEMO_KEY",
    "DECISIONS_QUERY",
    "REVIEW_SIGNAL",
    "START_EXECUTION",
    "CHECK",
    "REVIEW_STATE",
    "REPORT_STEP",
    "END_EXECUTION",
]
