"""A synthetic cohort through the REAL lifecycles on the time-skipping server.

The simulator is the customers (signals, tutorials, cancellations, renewal answers) and
the success team (every task completed with a typed result, sometimes late). It moves
time a day at a time on the server's clock (simulation/clock.py), so tasks are completed
on their own schedule, and takes a snapshot of every lifecycle (`status` query) after
each monthly check-in.

All of its choices come from generators seeded by (seed, customer, what, when) and are
keyed to days since the cohort started, never to the wall clock, so one seed gives the
same cohort, the same choices and the same results.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.service import RPCError

import lifecycles
from db.ingest import record_signals
from models.customer import workflow_id_for
from models.plan import PlanTemplate
from models.scoring import Quadrant
from models.tables import Customer, TaskRecord
from models.tasks import (
    Decision,
    KickoffResult,
    PlaybookResult,
    RenewalCheckpointResult,
    RenewalOutcome,
    RenewalResult,
    ReviewCallResult,
    TaskCompletion,
)
from simulation.accounts import (
    LATE_SHARE,
    Account,
    manager_rating,
    period_signals,
    renewal_decision,
    rng_for,
    success_plan,
    weekly,
)
from simulation.behaviour import churns_this_month, drift, lift
from simulation.clock import SimulatedClock

DAY = timedelta(days=1)
MONTH_DAYS = 30  # the default plan's check-in cadence: one snapshot per check-in
IN_FLIGHT = 20

# What the run is doing and how many days it has simulated, for a progress bar.
ProgressReport = Callable[[str, int], None]


class OpenTask(NamedTuple):
    """What the team reads of an open task: its columns, not the ORM entity (read daily)."""

    id: str
    customer_id: str
    kind: str
    owner_role: str
    playbook: str | None
    created_at: datetime
    due_at: datetime


@dataclass
class Position:
    quadrant: str
    customer_score: float | None
    company_score: float | None


@dataclass
class Snapshot:
    """After a month's check-in: each live customer's place, and who has left."""

    month: int
    positions: dict[str, Position]
    churned: list[str]


@dataclass
class CohortRun:
    clock: SimulatedClock
    engine: Engine
    plan: PlanTemplate
    accounts: list[Account]
    seed: int
    months: int
    task_queue: str
    report: ProgressReport | None = None
    snapshots: list[Snapshot] = field(default_factory=list)
    day: float = 0.0
    _start: datetime | None = None
    _scheduled: dict[str, float] = field(default_factory=dict)
    _finished: set[str] = field(default_factory=set)
    _tutorials: dict[tuple[str, str], float] = field(default_factory=dict)
    _late: set[str] = field(default_factory=set)  # tasks the team finishes late

    @functools.cached_property
    def by_id(self) -> dict[str, Account]:
        return {a.customer_id: a for a in self.accounts}

    def live(self) -> list[Account]:
        return [a for a in self.accounts if a.churned_month is None]

    # -- the clock ----------------------------------------------------------------------

    def day_of(self, at: datetime) -> float:
        assert self._start is not None
        return (at - self._start) / DAY

    async def advance(self, days: float) -> None:
        await self.clock.sleep(timedelta(days=days))
        self.day += days

    # -- the run ------------------------------------------------------------------------

    async def run(self) -> None:
        # The simulator's days count from the calendar's first midnight, exactly: the
        # server's clock also runs in real time, between skips and while the cohort signs
        # up, and what the simulator dates by its own days (the signals it records) would
        # otherwise carry those seconds. Scores near a window's edge, and ties among
        # peers, would then depend on how fast the machine ran.
        self._start = await self.clock.skip_to_calendar_start()
        self._report("signing up", 0)
        await self._each(
            lambda a: lifecycles.sign_up(self.clock.client, a.signup, self.plan, self.task_queue),
            self.accounts,
        )
        self._plan_tutorials()
        # Act at half days: clear of the lifecycles' own steps, which fall on whole days.
        await self.advance(0.5)
        try:
            for month in range(self.months):
                self._report(f"month {month + 1}", month * MONTH_DAYS)
                if month > 0:
                    for account in self.live():
                        drift(account.behaviour, self.seed, month)
                for day in range(MONTH_DAYS):
                    await self._tutorials_due()
                    await self._work()
                    if day == MONTH_DAYS - 1:  # the month's usage, before its check-in
                        await self._signals(month)
                    await self.advance(1)
                    self._report(f"month {month + 1}", month * MONTH_DAYS + day + 1)
                await self._snapshot(month + 1)
                await self._churns(month + 1)
            # Let the last cancellations finish their farewells before the lifecycles are
            # terminated: work cut off mid-activity keeps the time-skipping server's clock
            # locked, and the next run's first sleep would never return.
            await self.advance(1)
        finally:
            await self.terminate_all()

    def _report(self, doing: str, days: int) -> None:
        if self.report is not None:
            self.report(f"{self.plan.label}: {doing}", days)

    async def _each(self, call: Callable[[Any], Awaitable[Any]], items: Iterable[Any]) -> list[Any]:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(item: Any) -> Any:
            async with gate:
                return await call(item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def terminate_all(self) -> None:
        """The time-skipping server stops skipping while a workflow has work and no
        worker: no lifecycle may outlive this run's worker."""
        for account in self.accounts:
            with contextlib.suppress(RPCError):
                await self.clock.client.get_workflow_handle(
                    workflow_id_for(account.customer_id)
                ).terminate("simulation over")

    # -- the customers --------------------------------------------------------------------

    def _plan_tutorials(self) -> None:
        keys = [t.key for t in self.plan.onboarding.tutorials]
        for account in self.accounts:
            rng = rng_for(self.seed, account.key, "tutorials")
            done = round(account.behaviour.adoption * len(keys))
            for n, key in enumerate(keys[:done]):
                self._tutorials[(account.customer_id, key)] = 1 + 2 * n + rng.randint(0, 2)

    async def _tutorials_due(self) -> None:
        due = sorted(k for k, day in self._tutorials.items() if day <= self.day)
        for customer_id, key in due:
            del self._tutorials[(customer_id, key)]
            if self.by_id[customer_id].churned_month is None:
                await lifecycles.tutorial_completed(self.clock.client, customer_id, key)

    async def _signals(self, month: int) -> None:
        """What the product recorded over the month that ends now, for every live account,
        dated by the simulator's own days."""
        assert self._start is not None
        end = self._start + timedelta(days=self.day)
        start = end - timedelta(days=MONTH_DAYS - 1)
        items = [
            signal
            for account in self.live()
            for signal in period_signals(account, self.seed, month, start, MONTH_DAYS - 1)
        ]
        await asyncio.to_thread(record_signals, self.engine, items)

    async def _churns(self, month: int) -> None:
        """Accounts that leave mid-term: the behaviour model's monthly decision."""
        for account in self.live():
            if churns_this_month(account.behaviour, self.seed, month):
                account.churned_month = month
                with contextlib.suppress(lifecycles.LifecycleError):
                    await lifecycles.cancel(
                        self.clock.client,
                        account.customer_id,
                        "Not getting enough value for the price; cancelled",
                    )

    # -- the success team -------------------------------------------------------------------

    def _open_tasks(self) -> list[OpenTask]:
        live = [a.customer_id for a in self.live()]
        with Session(self.engine) as session:
            rows = session.exec(
                select(*(getattr(TaskRecord, name) for name in OpenTask._fields))
                .where(TaskRecord.status == "open", col(TaskRecord.customer_id).in_(live))
                .order_by(col(TaskRecord.id))
            ).all()
        return [OpenTask(*row) for row in rows]

    @staticmethod
    def _key(task: OpenTask, account: Account) -> str:
        """The task's id with the customer's position for its id: seeds its draws."""
        return f"{account.key}:{task.id.split(':', 1)[1]}"

    def _when(self, task: OpenTask, account: Account) -> float:
        """The day the team gets to it: mostly before the due date, sometimes late enough
        to be escalated (the plan escalates two days after the due date)."""
        rng = rng_for(self.seed, self._key(task, account), "when")
        created, due = round(self.day_of(task.created_at)), round(self.day_of(task.due_at))
        escalate_days = self.plan.tasks.escalate_after_hours / 24
        if rng.random() < LATE_SHARE:
            self._late.add(task.id)
            return due + escalate_days + 1.5
        return rng.randint(created + 1, max(created + 1, due - 1)) + 0.5

    async def _work(self) -> None:
        rows = await asyncio.to_thread(self._open_tasks)
        due: list[tuple[OpenTask, Account]] = []
        for row in rows:
            if row.id in self._finished:
                continue
            account = self.by_id[row.customer_id]
            if row.id not in self._scheduled:
                self._scheduled[row.id] = self._when(row, account)
            if self._scheduled[row.id] <= self.day:
                due.append((row, account))
        completions = [(row, account, self._result(row, account)) for row, account in due]
        await self._each(self._complete, [c for c in completions if c[2] is not None])

    async def _complete(self, item: tuple[OpenTask, Account, dict[str, Any] | None]) -> None:
        row, _, result = item
        assert result is not None
        completion = TaskCompletion(
            task_id=row.id, completed_by=f"sim-{row.owner_role}", result=result
        )
        with contextlib.suppress(lifecycles.LifecycleError):  # ended meanwhile (a churn)
            await lifecycles.complete_task(self.clock.client, completion)
        self._finished.add(row.id)

    def _result(self, row: OpenTask, account: Account) -> dict[str, Any] | None:
        """The typed result a success team would record, and what it does to the customer."""
        assert self._start is not None
        key = self._key(row, account)
        rng = rng_for(self.seed, key, "result")
        today = (self._start + timedelta(days=self.day)).date()
        term_days = self.plan.renewal.term_days
        if row.kind == "kickoff":
            account.plan_start_day = self.day
            plan = success_plan(account, today, term_days)
            target = datetime.combine(today + timedelta(days=term_days), time(), UTC)
            account.target_day = self.day_of(target)
            return KickoffResult.model_validate(
                {
                    "success_plan": plan,
                    "notes": f"Kickoff held with {account.signup.company}",
                    "onboarding_complete": account.behaviour.adoption < 0.5 and rng.random() < 0.5,
                }
            ).model_dump(mode="json")
        if row.kind == "review_call":
            measured = {
                g["key"]: round(weekly(account.behaviour, g["key"].removesuffix("_weekly")), 1)
                for g in account.goals
            }
            return ReviewCallResult(
                notes="Progress reviewed against their goals",
                goal_progress=measured,
                next_steps=["Train the next team"],
            ).model_dump(mode="json")
        if row.kind == "renewal_checkpoint":
            rating = manager_rating(account, self.seed, key)
            return RenewalCheckpointResult(
                manager_rating=Quadrant(rating), notes="The manager's own view"
            ).model_dump(mode="json")
        if row.kind == "renewal":
            outcome, reason = renewal_decision(account, self.seed, key)
            revised = None
            if outcome is not RenewalOutcome.churned:
                revised = success_plan(account, today, term_days)
                account.target_day += term_days
            return RenewalResult(outcome=outcome, reason=reason, revised_plan=revised).model_dump(
                mode="json"
            )
        if row.kind == "playbook":
            return self._playbook(row, account, rng.random())
        if row.kind == "email_review":
            return {"kind": "email_review", "decision": "approve"}
        return None  # a kind this simulator does not know: left open

    def _playbook(self, row: OpenTask, account: Account, draw: float) -> dict[str, Any]:
        situation = row.playbook or ""
        playbook = getattr(self.plan.playbooks, situation, None)
        decision = None
        if playbook is not None and playbook.requires_decision:
            keep = account.behaviour.responsive or draw >= 0.7
            decision = Decision.recover if keep else Decision.let_go
            account.let_go = account.let_go or decision is Decision.let_go
        account.playbooks_done.append(situation)
        if row.id not in self._late:  # only work done in time helps
            lift(account.behaviour)
        return PlaybookResult(
            notes=f"{situation.replace('_', ' ')}: call held", decision=decision
        ).model_dump(mode="json")

    # -- what we see ------------------------------------------------------------------------

    async def _snapshot(self, month: int) -> None:
        """Each account's place as its latest assessment left it on the customer's row,
        where the lifecycle records it (read once for the cohort, not asked of every
        lifecycle), and who has left."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(
                    Customer.id,
                    Customer.phase,
                    Customer.quadrant,
                    Customer.customer_score,
                    Customer.company_score,
                ).where(col(Customer.id).in_([a.customer_id for a in self.accounts]))
            ).all()
        ended = {id for id, phase, *_ in rows if phase == "churned"}
        for account in self.accounts:
            if account.customer_id in ended and account.churned_month is None:
                account.churned_month = month
        positions = {
            id: Position(quadrant, customer_score, company_score)
            for id, phase, quadrant, customer_score, company_score in rows
            if id not in ended
        }
        self.snapshots.append(Snapshot(month, positions, sorted(ended)))
