"""Simulated time: seconds of wall time per customer-year on the time-skipping server.

One customer-year is a customer's full first year and renewal, driven as a success team
would: sign-up, kickoff completed with a success plan, both required tutorials, signals
every month, the check-ins that follow, every task that opens completed (review calls,
playbooks, renewal checkpoints), the renewal completed as renewed, and on into term 2
(13 simulated months). Measured sequentially (one customer at a time) and for many
customers at once (they share the server's clock, so time advances for all together).

Baseline: the bare workflow of `bench.baseline` sleeping 365 days in 12 monthly timers on
the same server, its result awaited (which lets the server skip time), sequentially and
as many at once.

Target: < 1 s of wall time per customer-year.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError

import lifecycles
from bench.bare_worker import build_bare_worker
from bench.baseline import BareInput, BareLifecycle
from bench.common import (
    BenchResult,
    Metric,
    SimulatedClock,
    say,
    tandem_settings,
    time_skipping_server,
    workdir,
)
from db.engine import make_engine
from db.ingest import record_signals
from db.migrate import upgrade
from models.customer import SignUp, workflow_id_for
from models.lifecycle import LifecycleStatus
from models.plan import PlanTemplate
from models.signals import SignalIn, SignalKind
from models.tasks import TaskCompletion
from plans import load_plan
from worker import build_worker

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"sequential": 1, "concurrent": 3},
    "default": {"sequential": 3, "concurrent": 100},
    "full": {"sequential": 10, "concurrent": 300},
}
TANDEM_QUEUE = "bench-years"
BARE_QUEUE = "bench-years-bare"
MONTHS = 13  # the first term, its renewal, and a month into the second term
IN_FLIGHT = 50
GOAL = "active_reps"


def _success_plan(start: date) -> dict[str, Any]:
    return {
        "intended_use": "Track every deal from first call to signature",
        "success_definition": "Every rep logs their calls in Tandem instead of spreadsheets",
        "goals": [
            {
                "key": GOAL,
                "metric": "reps logging calls weekly",
                "baseline": 2,
                "target": 12,
                "target_date": (start + timedelta(days=365)).isoformat(),
            }
        ],
    }


def _result(kind: str, start: date, month: int) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {
        "kickoff": {"kind": "kickoff", "success_plan": _success_plan(start)},
        "review_call": {
            "kind": "review_call",
            "notes": "Two more teams live",
            "goal_progress": {GOAL: min(12, 2 + month)},
        },
        "renewal_checkpoint": {"kind": "renewal_checkpoint", "manager_rating": "happy_profitable"},
        "renewal": {"kind": "renewal", "outcome": "renewed", "reason": "Goals met"},
        "playbook": {"kind": "playbook", "notes": "Call held", "decision": "recover"},
        "email_review": {"kind": "email_review", "decision": "approve"},
    }
    return results[kind]


class Year:
    """Many customers' first year, driven together on one time-skipping server."""

    def __init__(
        self, clock: SimulatedClock, engine: Engine, plan: PlanTemplate, batch: str, n: int
    ) -> None:
        self.clock, self.engine, self.plan = clock, engine, plan
        self.signups = [
            SignUp(
                company=f"Year {batch} {i}",
                contact_name="Ada Year",
                email=f"ada.{batch}.{i}@year.test",
            )
            for i in range(n)
        ]
        self.ids = [s.customer_id for s in self.signups]

    @property
    def client(self) -> Client:
        return self.clock.client

    async def _each(self, call: Any, items: list[Any]) -> list[Any]:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(item: Any) -> Any:
            async with gate:
                return await call(item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def run(self) -> None:
        await self._each(
            lambda s: lifecycles.sign_up(self.client, s, self.plan, TANDEM_QUEUE), self.signups
        )
        start = (await self.clock.now()).date()
        await self.clock.sleep(timedelta(hours=12))
        await self._work(start, 0)
        for tutorial in self.plan.required_tutorials():
            await self._each(
                lambda c, t=tutorial: lifecycles.tutorial_completed(self.client, c, t), self.ids
            )
        for month in range(1, MONTHS + 1):
            await self._signals(month)
            await self.clock.sleep(timedelta(days=30))
            await self._work(start, month)
        statuses = await self._each(lambda c: lifecycles.status(self.client, c), self.ids)
        behind = [s.customer_id for s in statuses if s.term < 2]
        if behind:
            raise RuntimeError(f"not in their second term: {behind}")

    async def _signals(self, month: int) -> None:
        at: datetime = await self.clock.now()
        figures = {
            SignalKind.nps: 9,
            SignalKind.csat: 5,
            SignalKind.usage: 100 + 10 * month,
            SignalKind.fcr: 0.9,
            SignalKind.revenue: 10000,
            SignalKind.cost: 3000,
        }
        items = [
            SignalIn(customer_id=c, kind=kind, value=value, observed_at=at)
            for c in self.ids
            for kind, value in figures.items()
        ]
        items += [
            SignalIn(
                customer_id=c,
                kind=SignalKind.goal,
                goal_key=GOAL,
                value=min(12, 2 + month),
                observed_at=at,
            )
            for c in self.ids
        ]
        record_signals(self.engine, items)

    async def _work(self, start: date, month: int) -> None:
        statuses: list[LifecycleStatus] = await self._each(
            lambda c: lifecycles.status(self.client, c), self.ids
        )
        completions = [
            TaskCompletion(
                task_id=task.task_id,
                completed_by="bench",
                result=_result(task.kind.value, start, month),
            )
            for status in statuses
            for task in status.open_tasks
        ]
        await self._each(lambda c: lifecycles.complete_task(self.client, c), completions)

    async def terminate(self) -> None:
        for customer_id in self.ids:
            with contextlib.suppress(RPCError):
                await self.client.get_workflow_handle(workflow_id_for(customer_id)).terminate(
                    "benchmark over"
                )


async def _bare_years(client: Client, batch: str, n: int) -> None:
    handles = [
        await client.start_workflow(
            BareLifecycle.run,
            BareInput(timers=12, timer_days=365 / 12),
            id=f"bare-year-{batch}-{i}",
            task_queue=BARE_QUEUE,
        )
        for i in range(n)
    ]
    # One result at a time: each awaited result unlocks time skipping, and concurrent
    # unlocks let the test server skip past the others' timeouts.
    for handle in handles:
        await handle.result()


async def _timed(label: str, coroutine: Any, years: int) -> float:
    started = time.perf_counter()
    await coroutine
    seconds = (time.perf_counter() - started) / years
    say(f"years: {label}: {seconds:.2f} s per customer-year")
    return seconds


async def run(sequential: int, concurrent: int) -> BenchResult:
    result = BenchResult(
        "simulated_time", {"sequential": sequential, "concurrent": concurrent, "months": MONTHS}
    )
    started = time.perf_counter()
    plan = load_plan("default")
    with workdir("years") as tmp:
        settings = tandem_settings(tmp / "var")
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
        async with time_skipping_server() as clock:
            client = clock.client
            years: list[Year] = []
            try:
                async with (
                    build_worker(client, settings, engine, task_queue=TANDEM_QUEUE),
                    build_bare_worker(client, BARE_QUEUE, settings),
                ):
                    # One year each first, not measured: the workers' start-up (imports,
                    # Tandem's sign-up processes) is not part of a customer-year.
                    say("years: warming up (one customer-year of each)")
                    await _bare_years(client, "warm", 1)
                    years.append(Year(clock, engine, plan, "warm", 1))
                    await years[-1].run()
                    await years[-1].terminate()
                    # Baseline and Tandem alternate, so a shared machine's load weighs on both.
                    say(f"years: {sequential} customer-years one at a time, each side in turn")
                    bare_seq = tandem_seq = 0.0
                    for i in range(sequential):
                        bare_seq += await _timed(
                            f"baseline #{i + 1}", _bare_years(client, f"s{i}", 1), 1
                        )
                        years.append(Year(clock, engine, plan, f"s{i}", 1))
                        tandem_seq += await _timed(f"Tandem #{i + 1}", years[-1].run(), 1)
                        # Left running, its second term would slow the next measurements.
                        await years[-1].terminate()
                    bare_seq /= sequential
                    tandem_seq /= sequential
                    say(f"years: {concurrent} customer-years at once, each side in turn")
                    bare_many = await _timed(
                        f"baseline x{concurrent}", _bare_years(client, "c", concurrent), concurrent
                    )
                    years.append(Year(clock, engine, plan, "c", concurrent))
                    tandem_many = await _timed(f"Tandem x{concurrent}", years[-1].run(), concurrent)
                    # The server stops skipping time while a workflow has work and no worker.
                    for year in years:
                        await year.terminate()
            finally:
                engine.dispose()
    for name, tandem, bare in (
        ("customer-year, sequential", tandem_seq, bare_seq),
        (f"customer-year, {concurrent} at once", tandem_many, bare_many),
    ):
        metric = Metric(name, "s", tandem, bare, "< 1 s")
        metric.met = tandem < 1.0
        result.metrics.append(metric)
    result.seconds = time.perf_counter() - started
    return result
