"""Names and settings shared by the workflow side (which runs in Temporal's
sandbox and must stay deterministic: no I/O, standard library and
``temporalio`` only) and the worker side."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

# The local activities the workflow interceptor runs. They are registered
# by the plugin (or by hand, see WardenActivities) on every worker.
START_EXECUTION = "warden.start_execution"
CHECK = "warden.check"
REVIEW_STATE = "warden.review_state"
REPORT_STEP = "warden.report_step"
END_EXECUTION = "warden.end_execution"
OWN_ACTIVITIES = (START_EXECUTION, CHECK, REVIEW_STATE, REPORT_STEP, END_EXECUTION)

# The header that carries the Warden step of an allowed activity.
HEADER = "warden"
# The signal the worker's stream watcher sends when a review moved (a hint
# only: the workflow always reads the verdict from Warden itself).
REVIEW_SIGNAL = "__warden_review"
# The query that lists every decision of the run with its receipt.
DECISIONS_QUERY = "__warden_decisions"
# The memo key holding the execution id and the latest decisions.
MEMO_KEY = "warden"

# Error types of the ApplicationErrors the integration raises.
DENIED = "WardenDenied"
REJECTED = "WardenReviewRejected"
EXPIRED = "WardenReviewExpired"
ENDED = "WardenExecutionEnded"
REFUSED = "WardenRefused"

_TOOL_BAD = re.compile(r"[^A-Za-z0-9._:@/-]")


def tool_name_of(activity_type: str) -> str:
    """The kernel's tool name for an activity type: letters, digits and
    ``. _ : - @ /`` (others become ``_``), at most 200 characters."""
    name = _TOOL_BAD.sub("_", activity_type).lstrip("/") or "activity"
    return name[:200]


def agent_id_of(task_queue: str) -> str:
    name = tool_name_of(task_queue)
    if name.startswith("warden."):
        name = "tq-" + name
    return name


@dataclass(frozen=True)
class WorkflowSettings:
    """What the workflow interceptor needs (plain data, safe to read from
    workflow code)."""

    # Which workflow types map to Warden executions and which activity
    # types are checked (pure functions of the name: they run in workflow
    # code, so they must be deterministic).
    workflows: Callable[[str], bool] | None = None
    activities: Callable[[str], bool] | None = None
    # Review polling: the first wait, doubled up to the longest. The
    # stream watcher's signal wakes the workflow sooner.
    poll_first: timedelta = timedelta(seconds=1)
    poll_max: timedelta = timedelta(minutes=5)
    # Local activities: one call's time-out, and how long to keep trying
    # while Warden cannot answer (a restart, a network fault).
    call_timeout: timedelta = timedelta(seconds=30)
    unavailable_for: timedelta = timedelta(hours=1)
    # Decisions kept in the memo (all of them are in the history and the
    # query).
    memo_decisions: int = 50

    def checks_workflow(self, workflow_type: str) -> bool:
        return self.workflows is None or bool(self.workflows(workflow_type))

    def checks_activity(self, activity_type: str) -> bool:
        if activity_type in OWN_ACTIVITIES:
            return False
        return self.activities is None or bool(self.activities(activity_type))
