"""Seed 001's commissioning flow on Temporal, governed by Warden.

Every activity is decided by the tenant's kernel policy first (the
`kernel-rules.json` of this folder: reads allowed, routing a report needs
the commissioning lead's approval). The routing decision itself is a
Warden decision on the shipped `policies/commissioning` bundle
(`agento/commissioning/routing`), made in an activity, so the decision
with its receipt is an activity result in Temporal's history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import warden


@dataclass
class CommissioningInput:
    project_id: str
    template_id: str = "bess-commissioning-v2"
    # Demo data: what the systems of record would answer.
    punch_items_open: list[dict] = field(default_factory=list)
    test_results: list[dict] = field(default_factory=lambda: [{"parameter": "trip_voltage", "value": 478}])


SCHEDULE = {"trip_voltage": {"expected": 480, "tolerance": 5}}


@activity.defn(name="procore.list_punch_items")
async def list_punch_items(inp: dict) -> dict:
    return {"project_id": inp["project_id"], "punch_items_open_bess": inp.get("punch_items_open", [])}


@activity.defn(name="commissioning.get_test_results")
async def get_test_results(inp: dict) -> dict:
    return {"protection_settings_schedule": SCHEDULE, "test_results": inp.get("test_results", [])}


@activity.defn(name="commissioning.decide_routing")
async def decide_routing(req: dict) -> dict:
    """Asks Warden's routing policy; the answer (allow, reasons, bundle
    version, receipt) becomes this activity's result in the history."""
    info = activity.info()
    async with warden.AsyncClient(os.environ["WARDEN_URL"], os.environ["WARDEN_ORCH_TOKEN"]) as client:
        d = await client.decide("agento/commissioning/routing", req["input"],
                                context={"workflow_id": info.workflow_id, "activity_id": info.activity_id})
    return {"decision_id": d.decision_id, "allow": d.allow, "reasons": list(d.reasons or []),
            "bundle": d.bundle, "receipt": d.receipt}


@activity.defn(name="reports.route")
async def route_report(req: dict) -> dict:
    return {"routed": True, "report": f"{req['project_id']}-{req['template_id']}.pdf",
            "routing_decision": req["routing_decision_id"]}


ACTIVITIES = [list_punch_items, get_test_results, decide_routing, route_report]


@workflow.defn(name="CommissioningWorkflow")
class CommissioningWorkflow:
    def __init__(self) -> None:
        self.fixed: dict | None = None

    @workflow.signal
    def engineer_reviewed(self, fixed: dict) -> None:
        """The engineer closed the punch items / re-ran the tests."""
        self.fixed = fixed

    @workflow.run
    async def run(self, inp: CommissioningInput) -> dict[str, Any]:
        opts = {"start_to_close_timeout": timedelta(minutes=5),
                "retry_policy": RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))}
        data = {"project_id": inp.project_id, "punch_items_open": inp.punch_items_open,
                "test_results": inp.test_results}
        decisions = []
        while True:
            procore = await workflow.execute_activity("procore.list_punch_items", data, **opts)
            specs = await workflow.execute_activity("commissioning.get_test_results", data, **opts)
            routing = await workflow.execute_activity("commissioning.decide_routing", {"input": {
                "procore": {"punch_items_open_bess": procore["punch_items_open_bess"]},
                "protection_settings_schedule": specs["protection_settings_schedule"],
                "test_results": specs["test_results"]}}, **opts)
            decisions.append(routing["decision_id"])
            if routing["allow"]:
                break
            # Blocked: wait (up to 48 h, on a durable timer) for the engineer.
            self.fixed = None
            await workflow.wait_condition(lambda: self.fixed is not None, timeout=timedelta(hours=48))
            data = {**data, **self.fixed}
        report = await workflow.execute_activity("reports.route", {
            "project_id": inp.project_id, "template_id": inp.template_id,
            "routing_decision_id": routing["decision_id"]}, **opts)
        return {"report": report, "routing_decisions": decisions}
