"""Sign-up throughput, latency and CPU, with 1 and more worker processes.

Measures N concurrent sign-ups through `lifecycles.sign_up` (update-with-start; returns
once the welcome email is composed), at most `concurrency` in flight, against the bare
workflow of `bench.baseline` started with update-with-start the same way, whose update
returns after one no-op activity. Like with like: the same dev server (in memory), the
client in this process, and on each side the same number of worker processes, each with
the same worker settings (`tandem worker` and `python -m bench.bare_worker`, both with
worker.worker_options), polling one task queue per side. Records: SQLite, as `make run`
keeps them, shared by Tandem's workers. Baseline and Tandem batches alternate over a few
rounds, first with one worker process on each side, then with more.

Reports, for each number of worker processes, workflows/s, p50 and p99 latency, and the
CPU per sign-up of every process involved (this client, the side's workers and the dev
server, from /proc), the main efficiency ratio; then with one worker, where that CPU goes,
and the p50 of sign-ups one at a time, the path's own latency (at 50 in flight, latency is
mostly queueing: in flight / throughput).
Targets: CPU per sign-up <= 1.25x baseline; throughput >= 0.8x baseline.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Awaitable
from dataclasses import dataclass, field

from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.baseline import BareInput, BareLifecycle
from bench.common import (
    BenchResult,
    Metric,
    Process,
    Retried,
    bare_worker_args,
    child_pid,
    cpu_seconds,
    dev_server,
    more_workers,
    percentile,
    run_bounded,
    say,
    tandem_settings,
    tandem_worker_args,
    workdir,
    worker_env,
    worker_processes,
)
from db.engine import make_engine
from db.migrate import upgrade
from lifecycles import sign_up
from models.customer import SignUp
from models.plan import PlanTemplate
from models.tables import TaskRecord
from plans import load_plan

SIZES: dict[str, dict[str, int]] = {
    # count: sign-ups of each side per number of workers; workers: measured at 1..workers;
    # serial: sign-ups of each side one at a time, for the latency of the path alone.
    "smoke": {"count": 20, "concurrency": 10, "warmup": 4, "rounds": 1, "serial": 3, "workers": 2},
    "default": {
        "count": 1000, "concurrency": 50, "warmup": 50, "rounds": 4, "serial": 30, "workers": 2,
    },
    "full": {
        "count": 5000, "concurrency": 50, "warmup": 100, "rounds": 10, "serial": 100, "workers": 2,
    },
}  # fmt: skip
TANDEM_QUEUE = "bench-tandem"
BARE_QUEUE = "bench-bare"
CPU_TARGET = 1.25
THROUGHPUT_TARGET = 0.8


@dataclass
class Side:
    """One side's measurements at one number of workers, added up over the rounds."""

    workers: list[Process]
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0  # this process: the client only
    worker_cpu: float = 0.0  # the side's worker processes, together
    server_cpu: float = 0.0

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.worker_cpu + self.server_cpu

    async def batch(self, run: Awaitable[tuple[list[float], float]], server: int) -> None:
        pids = [os.getpid(), server, *(w.pid for w in self.workers)]
        before = [cpu_seconds(pid) for pid in pids]
        latencies, wall = await run
        spent = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
        self.latencies += latencies
        self.wall += wall
        self.client_cpu += spent[0]
        self.server_cpu += spent[1]
        self.worker_cpu += sum(spent[2:])


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


def _kickoffs(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(TaskRecord).where(TaskRecord.kind == "kickoff")
        ).one()


async def _settle(
    engine: Engine, kickoffs: int, timeout: float = 120.0, pause: float = 1.0
) -> None:
    """Wait for the sign-ups' follow-up work (invites, kickoff task) so it does not run
    into the next batch's measurement."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _kickoffs(engine) < kickoffs:
        await asyncio.sleep(0.05)
    await asyncio.sleep(pause)


@dataclass
class Bench:
    client: Client
    engine: Engine
    plan: PlanTemplate
    server: int
    signed_up: int = 0  # Tandem sign-ups so far, for _settle
    retried: Retried = field(default_factory=Retried)

    async def tandem(self, batch: str, index: int) -> None:
        signup = _signup(batch, index)
        await self.retried(lambda: sign_up(self.client, signup, self.plan, TANDEM_QUEUE))

    async def bare(self, batch: str, index: int) -> None:
        await self.retried(lambda: _bare(self.client, batch, index))

    async def warm_up(self, label: str, count: int, concurrency: int) -> None:
        """New workers' first workflows pay for imports and caches: not measured."""
        say(f"signup: warming up ({count} of each)")
        await run_bounded(count, concurrency, lambda i: self.bare(f"w{label}", i))
        await run_bounded(count, concurrency, lambda i: self.tandem(f"w{label}", i))
        self.signed_up += count
        await _settle(self.engine, self.signed_up)

    async def measure(
        self, label: str, bare: Side, tandem: Side, count: int, concurrency: int, rounds: int
    ) -> None:
        """Alternate baseline and Tandem batches, so a load that changes on a shared
        machine weighs on both alike; each side's figures add up over the rounds."""
        sizes = [count // rounds + (1 if r < count % rounds else 0) for r in range(rounds)]
        for r, size in enumerate(sizes, 1):
            batch = f"{label}r{r}"
            progress = max(size // 2, 1)
            say(f"signup: {label}: round {r}/{rounds}: {size} of each, {concurrency} in flight")
            await bare.batch(
                run_bounded(
                    size, concurrency, lambda i, b=batch: self.bare(b, i),
                    "baseline", progress,
                ),
                self.server,
            )  # fmt: skip
            await tandem.batch(
                run_bounded(
                    size, concurrency, lambda i, b=batch: self.tandem(b, i), "tandem", progress
                ),
                self.server,
            )
            # The sign-ups' follow-up work (reminder timers, a notice's delivery retry)
            # must not run into the next baseline batch, nor be cut off by a worker stopping.
            self.signed_up += size
            await _settle(self.engine, self.signed_up)

    async def one_at_a_time(self, serial: int) -> tuple[list[float], list[float]]:
        """The latency of the path itself, with nothing else in flight: under load the
        p50 is mostly queueing (in flight / throughput)."""
        say(f"signup: {serial} of each, one at a time")
        bare = [0.0] * serial
        tandem = [0.0] * serial
        for i in range(serial):
            started = time.perf_counter()
            await self.bare("serial", i)
            bare[i] = time.perf_counter() - started
            started = time.perf_counter()
            await self.tandem("serial", i)
            tandem[i] = time.perf_counter() - started
            self.signed_up += 1
            await _settle(self.engine, self.signed_up, pause=0.2)
        return bare, tandem


async def run(
    count: int,
    concurrency: int,
    warmup: int,
    rounds: int = 1,
    serial: int = 10,
    workers: int = 2,
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
            "workers": workers,
            "server_db": "file" if persist_server else "memory",
        },
    )
    started = time.perf_counter()
    measured: dict[int, tuple[Side, Side]] = {}
    with workdir("signup") as tmp:
        async with dev_server(tmp, persist_server) as env:
            address = env.client.service_client.config.target_host
            var_dir = tmp / "var"
            engine = make_engine(tandem_settings(var_dir).resolved_database_url)
            upgrade(engine)
            bench = Bench(env.client, engine, load_plan("default"), child_pid("start-dev"))
            tandem_args = tandem_worker_args()
            tandem_env = worker_env(address, var_dir, TANDEM_QUEUE)
            bare_args = bare_worker_args(address, BARE_QUEUE)
            bare_env = worker_env(address, var_dir, BARE_QUEUE)
            alone: tuple[list[float], list[float]] | None = None
            try:
                async with (
                    worker_processes(tandem_args, tandem_env, tmp / "tandem.log", 1) as t,
                    worker_processes(bare_args, bare_env, tmp / "bare.log", 1) as b,
                ):
                    try:
                        for n in range(1, workers + 1):
                            await more_workers(t, tandem_args, tandem_env, tmp / "tandem.log", n)
                            await more_workers(b, bare_args, bare_env, tmp / "bare.log", n)
                            label = f"{n}w"
                            await bench.warm_up(label, warmup, concurrency)
                            bare, tandem = Side(list(b)), Side(list(t))
                            await bench.measure(label, bare, tandem, count, concurrency, rounds)
                            measured[n] = bare, tandem
                        alone = await bench.one_at_a_time(serial)
                    except Exception as error:
                        if not measured:
                            raise
                        # What was measured stands; the rest is reported as failed.
                        traceback.print_exc()
                        result.error = f"{type(error).__name__}: {error}"
            finally:
                engine.dispose()
    _report(result, count, measured, alone)
    if bench.retried.count:
        result.notes.append(
            f"{bench.retried.count} calls tried again after the server refused them for now"
        )
    result.seconds = time.perf_counter() - started
    return result


def metric_names(workers: int) -> list[str]:
    """The metrics `run` reports, in order (the smoke test checks them)."""
    names = []
    for n in range(1, workers + 1):
        names += [f"CPU per sign-up, {_workers(n)}", f"throughput, {_workers(n)}"]
        names += [f"p50 latency, {_workers(n)}", f"p99 latency, {_workers(n)}"]
    return [
        *names,
        "CPU per sign-up, 1 worker: its workers",
        "CPU per sign-up, 1 worker: dev server",
        "CPU per sign-up, 1 worker: client",
        "p50 latency, one at a time",
    ]


def _workers(n: int) -> str:
    return "1 worker" if n == 1 else f"{n} workers"


def _report(
    result: BenchResult,
    count: int,
    measured: dict[int, tuple[Side, Side]],
    alone: tuple[list[float], list[float]] | None,
) -> None:
    for n, (bare, tandem) in measured.items():
        cpu = Metric(
            f"CPU per sign-up, {_workers(n)}",
            "ms",
            1000 * tandem.cpu / count,
            1000 * bare.cpu / count,
            f"<= {CPU_TARGET}x baseline",
        )
        cpu.met = cpu.ratio is not None and cpu.ratio <= CPU_TARGET
        throughput = Metric(
            f"throughput, {_workers(n)}",
            "workflows/s",
            count / tandem.wall,
            count / bare.wall,
            f">= {THROUGHPUT_TARGET}x baseline",
        )
        throughput.met = throughput.ratio is not None and throughput.ratio >= THROUGHPUT_TARGET
        result.metrics += [
            cpu,
            throughput,
            Metric(
                f"p50 latency, {_workers(n)}",
                "ms",
                1000 * percentile(tandem.latencies, 0.5),
                1000 * percentile(bare.latencies, 0.5),
            ),
            Metric(
                f"p99 latency, {_workers(n)}",
                "ms",
                1000 * percentile(tandem.latencies, 0.99),
                1000 * percentile(bare.latencies, 0.99),
            ),
        ]
        say(
            f"signup, {_workers(n)}: Tandem {throughput.tandem:.1f}/s, {cpu.tandem:.1f} ms CPU; "
            f"baseline {throughput.baseline:.1f}/s, {cpu.baseline:.1f} ms CPU"
        )
    bare, tandem = measured[1]
    parts = {"its workers": "worker_cpu", "dev server": "server_cpu", "client": "client_cpu"}
    for name, part in parts.items():
        result.metrics.append(
            Metric(
                f"CPU per sign-up, 1 worker: {name}",
                "ms",
                1000 * getattr(tandem, part) / count,
                1000 * getattr(bare, part) / count,
            )
        )
    if alone is not None:
        bare_alone, tandem_alone = alone
        result.metrics.append(
            Metric(
                "p50 latency, one at a time",
                "ms",
                1000 * percentile(tandem_alone, 0.5),
                1000 * percentile(bare_alone, 0.5),
            )
        )
    result.notes.append(
        f"load average (1 min) {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs"
    )
