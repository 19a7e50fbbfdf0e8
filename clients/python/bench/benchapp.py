"""The workflow the overhead bench runs: `n` activities one after another."""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="kb.get")
async def kb_get(i: dict) -> float:
    return time.time()


@workflow.defn(name="BenchWorkflow")
class BenchWorkflow:
    @workflow.run
    async def run(self, n: int) -> list[float]:
        out = []
        for i in range(n):
            out.append(await workflow.execute_activity("kb.get", {"i": i},
                                                       start_to_close_timeout=timedelta(seconds=30)))
        return out
