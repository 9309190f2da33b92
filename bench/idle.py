"""Memory and history of idle lifecycles.

Starts N lifecycles (sign-up through `lifecycles.sign_up`, at most `concurrency` in
flight, progress every 500) which then wait on their timers (tutorial nudges, the first
check-in) and on the kickoff task; once the worker is idle, measures the worker's RSS
(`tandem worker` in a process of its own, /proc/<pid>/status VmRSS, and its peak VmHWM,
each summed with the worker's children: its sign-up processes; shared pages count twice),
the Temporal dev server's RSS, and the history size per lifecycle (events and bytes, from
`fetch_history` on a sample).

Baseline: the bare workflow of `bench.baseline` (update-with-start, one no-op activity,
then idling on a timer), its worker (`python -m bench.bare_worker`, same settings) in a
process of its own. Each side gets a fresh dev server, so server memory is comparable.

Target: worker RSS < 1 GiB at N = 10,000. The worker caches at most 1,000 workflows
(the SDK's default max_cached_workflows); an idle lifecycle beyond that is evicted and
replayed from history when its next timer fires, so memory is bounded by the cache.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.baseline import BareInput, BareLifecycle
from bench.common import (
    BenchResult,
    Metric,
    Process,
    child_pid,
    dev_server,
    history_sizes,
    peak_rss_mib,
    process_tree,
    rss_mib,
    run_bounded,
    say,
    tandem_settings,
    wait_until_idle,
    workdir,
    worker_env,
)
from db.engine import make_engine
from lifecycles import sign_up
from models.customer import SignUp, workflow_id_for
from models.tables import TaskRecord
from plans import load_plan

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"count": 50, "concurrency": 25},
    "default": {"count": 10_000, "concurrency": 50},
    "full": {"count": 30_000, "concurrency": 50},
}
QUEUE = "bench-idle"
HISTORY_SAMPLE = 20
GIB_MIB = 1024.0


@dataclass
class Side:
    started_per_second: float
    worker_rss: float
    worker_peak: float
    server_rss: float
    events: float
    history_bytes: float


async def _wait_for_kickoffs(var_dir: Path, count: int, timeout: float = 1800.0) -> None:
    """Every lifecycle has done its sign-up work once its kickoff task is recorded."""
    engine = make_engine(tandem_settings(var_dir).resolved_database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                opened = session.exec(
                    select(func.count()).select_from(TaskRecord).where(TaskRecord.kind == "kickoff")
                ).one()
            if opened >= count:
                return
            await asyncio.sleep(1.0)
    finally:
        engine.dispose()


async def _side(kind: str, count: int, concurrency: int, persist_server: bool) -> Side:
    with workdir(f"idle-{kind}") as tmp:
        async with dev_server(tmp, persist_server) as env:
            client = env.client
            address = client.service_client.config.target_host
            server = child_pid("start-dev")
            var_dir = tmp / "var"
            if kind == "tandem":
                args = [str(Path(sys.executable).parent / "tandem"), "worker"]
            else:
                args = [
                    sys.executable,
                    "-m",
                    "bench.bare_worker",
                    "--address",
                    address,
                    "--task-queue",
                    QUEUE,
                ]
            worker = Process(args, worker_env(address, var_dir, QUEUE), tmp / "worker.log")
            try:
                await worker.wait_for_output("Worker polling")
                ids, rate = await _start(kind, client, count, concurrency)
                if kind == "tandem":
                    await _wait_for_kickoffs(var_dir, count)
                waited = await wait_until_idle(worker.pid)
                say(f"idle {kind}: worker idle after {waited:.0f} s more")
                tree = process_tree(worker.pid)  # the worker and its sign-up processes
                side = Side(
                    started_per_second=rate,
                    worker_rss=sum(map(rss_mib, tree)),
                    worker_peak=sum(map(peak_rss_mib, tree)),
                    server_rss=rss_mib(server),
                    events=0.0,
                    history_bytes=0.0,
                )
                step = max(1, len(ids) // HISTORY_SAMPLE)
                side.events, side.history_bytes = await history_sizes(client, ids[::step])
            finally:
                worker.stop()
    say(
        f"idle {kind}: worker {side.worker_rss:.0f} MiB (peak {side.worker_peak:.0f}), "
        f"server {side.server_rss:.0f} MiB, {side.events:.0f} events / "
        f"{side.history_bytes / 1024:.1f} KiB per workflow"
    )
    return side


async def _start(
    kind: str, client: Client, count: int, concurrency: int
) -> tuple[list[str], float]:
    plan = load_plan("default")

    async def tandem(index: int) -> None:
        signup = SignUp(
            company=f"Idle {index}",
            contact_name="Ada Idle",
            email=f"ada.{index}@idle.test",
            plan="default",
        )
        await sign_up(client, signup, plan, QUEUE)

    async def bare(index: int) -> None:
        start = WithStartWorkflowOperation(
            BareLifecycle.run,
            BareInput(),
            id=f"bare-idle-{index}",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=QUEUE,
        )
        await client.execute_update_with_start_workflow(
            BareLifecycle.acknowledge, start_workflow_operation=start
        )

    say(f"idle {kind}: starting {count} workflows, {concurrency} in flight")
    call = tandem if kind == "tandem" else bare
    _, wall = await run_bounded(count, concurrency, call, f"idle {kind}", 500)
    if kind == "tandem":
        ids = [
            workflow_id_for(
                SignUp(
                    company=f"Idle {i}", contact_name="Ada Idle", email=f"ada.{i}@idle.test"
                ).customer_id
            )
            for i in range(count)
        ]
    else:
        ids = [f"bare-idle-{i}" for i in range(count)]
    return ids, count / wall


async def run(count: int, concurrency: int, persist_server: bool = False) -> BenchResult:
    result = BenchResult(
        "idle",
        {
            "count": count,
            "concurrency": concurrency,
            "server_db": "file" if persist_server else "memory",
        },
    )
    started = time.perf_counter()
    bare = await _side("baseline", count, concurrency, persist_server)
    tandem = await _side("tandem", count, concurrency, persist_server)
    worker = Metric("worker RSS", "MiB", tandem.worker_rss, bare.worker_rss, "< 1 GiB")
    worker.met = tandem.worker_rss < GIB_MIB
    result.metrics += [
        worker,
        Metric("worker peak RSS", "MiB", tandem.worker_peak, bare.worker_peak),
        Metric("server RSS", "MiB", tandem.server_rss, bare.server_rss),
        Metric("history events / lifecycle", "events", tandem.events, bare.events),
        Metric(
            "history size / lifecycle",
            "KiB",
            tandem.history_bytes / 1024,
            bare.history_bytes / 1024,
        ),
        Metric("start rate", "workflows/s", tandem.started_per_second, bare.started_per_second),
    ]
    result.notes.append(
        "worker cache: max_cached_workflows=1000 (SDK default); idle lifecycles beyond it "
        "are evicted and replayed when their next timer fires"
    )
    result.seconds = time.perf_counter() - started
    return result
