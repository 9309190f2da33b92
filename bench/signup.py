"""Sign-up throughput and latency.

Measures N concurrent sign-ups through `lifecycles.sign_up` (update-with-start; returns
once the welcome email is composed), at most `concurrency` in flight, against the bare
workflow of `bench.baseline` started with update-with-start the same way, whose update
returns after one no-op activity. Same dev server, same worker settings (the workflow
runner and worker.worker_options), both workers in this process beside the client;
baseline and Tandem batches alternate over a few rounds. Tandem's worker does sign-up's
records and emails in processes of its own (activities/sign_up_pool.py), as in
production: they are Tandem's, and their CPU counts as the worker's.

Reports workflows/s, p50 and p99 latency of each, and the ratios; the CPU each side's
sign-ups cost this process with its children (client, workers, sign-up processes) and
the dev server, from /proc; then
the p50 of sign-ups one at a time, the path's own latency (at 50 in flight, latency is
mostly queueing: in flight / throughput).
Targets: throughput >= 0.8x baseline; p50 <= 1.5x baseline.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.bare_worker import build_bare_worker
from bench.baseline import BareInput, BareLifecycle
from bench.common import (
    BenchResult,
    Metric,
    child_pid,
    cpu_seconds,
    dev_server,
    percentile,
    run_bounded,
    say,
    tandem_settings,
    tree_cpu_seconds,
    workdir,
)
from db.engine import make_engine
from db.migrate import upgrade
from lifecycles import sign_up
from models.customer import SignUp
from models.plan import PlanTemplate
from models.tables import TaskRecord
from plans import load_plan
from worker import build_worker

SIZES: dict[str, dict[str, int]] = {
    # serial: sign-ups of each side one at a time, for the latency of the path alone.
    "smoke": {"count": 20, "concurrency": 10, "warmup": 4, "rounds": 1, "serial": 3},
    "default": {"count": 2000, "concurrency": 50, "warmup": 50, "rounds": 4, "serial": 30},
    "full": {"count": 10000, "concurrency": 50, "warmup": 100, "rounds": 10, "serial": 100},
}
TANDEM_QUEUE = "bench-tandem"
BARE_QUEUE = "bench-bare"


@dataclass
class Side:
    """One side's measurements, added up over the rounds."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    process_cpu: float = 0.0  # this process: the client and the workers
    server_cpu: float = 0.0

    async def batch(self, run: Awaitable[tuple[list[float], float]], server: int) -> None:
        before = tree_cpu_seconds(os.getpid(), leave_out=server), cpu_seconds(server)
        latencies, wall = await run
        self.latencies += latencies
        self.wall += wall
        after = tree_cpu_seconds(os.getpid(), leave_out=server)
        # By process: one that started meanwhile (a sign-up process replaced) counts
        # whole; one that ended took its CPU along, unmeasured.
        self.process_cpu += sum(after[pid] - before[0].get(pid, 0.0) for pid in after)
        self.server_cpu += cpu_seconds(server) - before[1]


def _signup(batch: str, index: int) -> SignUp:
    return SignUp(
        company=f"Bench {batch} {index}",
        contact_name="Ada Bench",
        email=f"ada.{batch}.{index}@bench.test",
        plan="default",
    )


async def _bare(client: Client, batch: str, index: int) -> None:
    start = WithStartWorkflowOperation(
        BareLifecycle.run,
        BareInput(),
        id=f"bare-{batch}-{index}",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=BARE_QUEUE,
    )
    await client.execute_update_with_start_workflow(
        BareLifecycle.acknowledge, start_workflow_operation=start
    )


async def _settle(
    engine: Engine, kickoffs: int, timeout: float = 120.0, pause: float = 1.0
) -> None:
    """Wait for the sign-ups' follow-up work (invites, kickoff task) so it does not run
    into the next batch's measurement."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as session:
            opened = session.exec(
                select(func.count()).select_from(TaskRecord).where(TaskRecord.kind == "kickoff")
            ).one()
        if opened >= kickoffs:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(pause)


async def run(
    count: int,
    concurrency: int,
    warmup: int,
    rounds: int = 1,
    serial: int = 10,
    persist_server: bool = False,
) -> BenchResult:
    result = BenchResult(
        "signup",
        {
            "count": count,
            "concurrency": concurrency,
            "warmup": warmup,
            "rounds": rounds,
            "serial": serial,
            "server_db": "file" if persist_server else "memory",
        },
    )
    started = time.perf_counter()
    with workdir("signup") as tmp:
        async with dev_server(tmp, persist_server) as env:
            settings = tandem_settings(tmp / "var")
            engine = make_engine(settings.resolved_database_url)
            upgrade(engine)
            plan = load_plan("default")
            client = env.client
            try:
                async with (
                    build_worker(client, settings, engine, task_queue=TANDEM_QUEUE),
                    build_bare_worker(client, BARE_QUEUE, settings),
                ):
                    bare, tandem = await _measure(
                        client, engine, plan, count, concurrency, warmup, rounds
                    )
                    alone = await _one_at_a_time(client, engine, plan, serial, warmup + count)
            finally:
                engine.dispose()
    _report(result, count, bare, tandem, alone)
    result.seconds = time.perf_counter() - started
    return result


async def _measure(
    client: Client,
    engine: Engine,
    plan: PlanTemplate,
    count: int,
    concurrency: int,
    warmup: int,
    rounds: int,
) -> tuple[Side, Side]:
    """Alternate baseline and Tandem batches, so a load that changes on a shared machine
    weighs on both alike; each side's figures add up over the rounds."""

    async def tandem_call(batch: str, index: int) -> None:
        await sign_up(client, _signup(batch, index), plan, TANDEM_QUEUE)

    server = child_pid("start-dev")
    say(f"signup: warming up ({warmup} of each)")
    await run_bounded(warmup, concurrency, lambda i: _bare(client, "warm", i))
    await run_bounded(warmup, concurrency, lambda i: tandem_call("warm", i))
    await _settle(engine, warmup)
    sizes = [count // rounds + (1 if r < count % rounds else 0) for r in range(rounds)]
    bare, tandem = Side(), Side()
    done = warmup
    for r, size in enumerate(sizes, 1):
        progress = max(size // 2, 1)
        say(
            f"signup: round {r}/{rounds}: baseline, {size} update-with-starts, "
            f"{concurrency} in flight"
        )
        await bare.batch(
            run_bounded(
                size, concurrency, lambda i, r=r: _bare(client, f"r{r}", i), "baseline", progress
            ),
            server,
        )
        say(f"signup: round {r}/{rounds}: Tandem, {size} sign-ups, {concurrency} in flight")
        await tandem.batch(
            run_bounded(
                size, concurrency, lambda i, r=r: tandem_call(f"r{r}", i), "tandem", progress
            ),
            server,
        )
        # The sign-ups' follow-up work (reminder timers, a notice's delivery retry) must
        # not run into the next baseline batch, nor be cut off by the worker stopping.
        done += size
        await _settle(engine, done)
    return bare, tandem


async def _one_at_a_time(
    client: Client, engine: Engine, plan: PlanTemplate, serial: int, done: int
) -> tuple[list[float], list[float]]:
    """The latency of the path itself, with nothing else in flight: under load the p50
    is mostly queueing (in flight / throughput)."""
    say(f"signup: {serial} of each, one at a time")
    bare = [0.0] * serial
    tandem = [0.0] * serial
    for i in range(serial):
        started = time.perf_counter()
        await _bare(client, "serial", i)
        bare[i] = time.perf_counter() - started
        started = time.perf_counter()
        await sign_up(client, _signup("serial", i), plan, TANDEM_QUEUE)
        tandem[i] = time.perf_counter() - started
        await _settle(engine, done + i + 1, pause=0.2)
    return bare, tandem


def _report(
    result: BenchResult,
    count: int,
    bare: Side,
    tandem: Side,
    alone: tuple[list[float], list[float]],
) -> None:
    throughput = Metric(
        "throughput", "workflows/s", count / tandem.wall, count / bare.wall, ">= 0.8x baseline"
    )
    throughput.met = throughput.ratio is not None and throughput.ratio >= 0.8
    p50 = Metric(
        "p50 latency",
        "ms",
        1000 * percentile(tandem.latencies, 0.5),
        1000 * percentile(bare.latencies, 0.5),
        "<= 1.5x baseline",
    )
    p50.met = p50.ratio is not None and p50.ratio <= 1.5
    p99 = Metric(
        "p99 latency",
        "ms",
        1000 * percentile(tandem.latencies, 0.99),
        1000 * percentile(bare.latencies, 0.99),
    )
    bare_alone, tandem_alone = alone
    p50_alone = Metric(
        "p50 latency, one at a time",
        "ms",
        1000 * percentile(tandem_alone, 0.5),
        1000 * percentile(bare_alone, 0.5),
    )
    # Where the time goes: this process holds the client and both workers under one
    # interpreter lock; Tandem's sign-up processes add their own.
    process_cpu = Metric(
        "CPU per sign-up, client and worker",
        "ms",
        1000 * tandem.process_cpu / count,
        1000 * bare.process_cpu / count,
    )
    server_cpu = Metric(
        "CPU per sign-up, dev server",
        "ms",
        1000 * tandem.server_cpu / count,
        1000 * bare.server_cpu / count,
    )
    result.metrics += [throughput, p50, p99, p50_alone, process_cpu, server_cpu]
    say(
        f"signup: Tandem {throughput.tandem:.1f}/s p50 {p50.tandem:.0f} ms; "
        f"baseline {throughput.baseline:.1f}/s p50 {p50.baseline:.0f} ms"
    )
