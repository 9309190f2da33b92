"""Faults, on real processes: Temporal's dev server (persisted to a file) and `tandem
worker` as a separate process, configured by environment as in production. Each test
is bounded in time and talks to 127.0.0.1 only.

What the dev server cannot show: timers firing at the right simulated time (it has no
time skipping, and the default plan's first timer is days away). The time-skipping
tests in test_lifecycle.py show timers firing; here we show that timers in flight
survive a server restart unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)

import lifecycles
from activities.message import eml_filename, message_id
from db.engine import database_url, make_engine
from models.customer import SignUp, workflow_id_for
from models.lifecycle import LifecycleEnd, SignupReceipt, StepKind
from models.plan import PlanTemplate
from models.tables import OutboxEmail
from models.tasks import TaskCompletion, TaskKind, TaskReceipt, example_result
from plans import load_plan
from settings import Settings
from tests.conftest import POSTGRES_URL, need_postgres
from tests.fault_support import DevServer, Records, WorkerProcess, eventually, tandem_env
from workflows.lifecycle import CustomerLifecycle

pytestmark = pytest.mark.slow

# Each test stays well under a minute; this is the hard stop should one hang.
TEST_LIMIT = 58
# A records activity in flight on a killed worker is retried once its start-to-close
# timeout (30 s, workflows/effects.py) has passed: the longest wait a crash costs.
RECORD_TIMEOUT = 30
T = TypeVar("T")


@dataclass
class Rig:
    server: DevServer
    worker: WorkerProcess
    client: Client
    settings: Settings
    records: Records
    engine: Engine
    plan: PlanTemplate
    outbox: Path
    background: list[asyncio.Task[Any]] = dataclasses.field(default_factory=list)

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A call left running while the test breaks things; cancelled if the test fails."""
        task = asyncio.create_task(coroutine)
        self.background.append(task)
        return task

    def customer(self, company: str) -> SignUp:
        tag = uuid.uuid4().hex[:6]
        return SignUp(company=f"{company} {tag}", contact_name="Ada", email=f"ada-{tag}@acme.test")

    async def sign_up(self, signup: SignUp) -> SignupReceipt:
        return await lifecycles.sign_up(self.client, signup, self.plan, self.settings.task_queue)

    def handle(self, customer_id: str) -> Any:
        return self.client.get_workflow_handle_for(
            CustomerLifecycle.run, workflow_id_for(customer_id)
        )

    async def reconnect(self) -> None:
        self.client = await self.server.ready(self.settings)

    def logs(self) -> str:
        return f"worker log:\n{self.worker.log()}\nserver log:\n{self.server.log(1500)}"

    async def settled(self, customer_ids: list[str], timeout: float) -> None:
        """Sign-up done: the welcome and the kickoff task are behind each
        lifecycle (it waits for its first nudge, days away) and every email is sent."""

        async def done(customer_id: str) -> bool:
            status = await lifecycles.status(self.client, customer_id)
            emails = self.records.emails(customer_id)
            return (
                status.next_step is not None
                and status.next_step.kind is StepKind.tutorial_nudge
                and bool(emails)
                and all(e.status == "sent" for e in emails)
            )

        async def all_done() -> bool:
            return all([await done(c) for c in customer_ids])

        await eventually(all_done, timeout, lambda: f"lifecycles settled\n{self.logs()}", 0.5)


def isolated_settings(**values: Any) -> Settings:
    """Settings from these values alone: not the developer's environment or .env, so the
    test's client speaks exactly as the worker it starts (see tandem_env)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("TANDEM_") or n == "DATABASE_URL"]:
            patch.delenv(name)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def rig_for(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[Rig]:
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    settings = isolated_settings(
        temporal_address=server.address,
        task_queue=f"tandem-faults-{uuid.uuid4().hex[:6]}",
        var_dir=tmp_path / "var",
        database_url=database_url or f"sqlite:///{tmp_path / 'tandem.db'}",
    )
    env = tandem_env(
        settings.temporal_address,
        settings.var_dir,
        settings.resolved_database_url,
        settings.task_queue,
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", cwd=tmp_path)
    engine = make_engine(settings.resolved_database_url)
    rig: Rig | None = None
    try:
        server.start()
        client = await server.ready(settings)
        worker.start()
        rig = Rig(
            server, worker, client, settings, Records(engine, settings.outbox_dir), engine,
            load_plan("default"), settings.outbox_dir,
        )  # fmt: skip
        async with asyncio.timeout(TEST_LIMIT):
            yield rig
    finally:
        if rig is not None:
            for task in rig.background:
                task.cancel()
            await asyncio.gather(*rig.background, return_exceptions=True)
        worker.cleanup()
        server.cleanup()
        engine.dispose()


def pending_timers(history: Any) -> dict[str, datetime]:
    """Timers started and neither fired nor cancelled: id -> when they fire."""
    started: dict[str, datetime] = {}
    ended: set[str] = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            attrs = event.timer_started_event_attributes
            fires = event.event_time.ToDatetime() + attrs.start_to_fire_timeout.ToTimedelta()
            started[attrs.timer_id] = fires
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            ended.add(event.timer_fired_event_attributes.timer_id)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            ended.add(event.timer_canceled_event_attributes.timer_id)
    return {k: v for k, v in started.items() if k not in ended}


def kickoff(customer_id: str) -> TaskCompletion:
    return TaskCompletion(
        task_id=f"{customer_id}:t1:kickoff",
        completed_by="ada.manager",
        result=example_result(TaskKind.kickoff),
    )


# -- the tests ---------------------------------------------------------------------------


async def test_a_worker_killed_mid_signup_storm_repeats_and_loses_nothing(tmp_path: Path) -> None:
    async with rig_for(tmp_path) as rig:
        storm = [rig.customer("Storm") for _ in range(20)]
        ids = [s.customer_id for s in storm]
        signing = [rig.spawn(rig.sign_up(s)) for s in storm]
        # SIGKILL the moment the first lifecycle has written its first record: the
        # other lifecycles' activities and workflow tasks are in flight on this worker.
        await eventually(lambda: rig.records.customers(ids), 20, "a first record", 0.02)
        rig.worker.kill()
        emails_at_kill = rig.records.count(OutboxEmail, ids)
        assert not all(task.done() for task in signing)
        rig.worker.start()

        # While the storm's lost activities wait out their timeout, an undisturbed run on
        # the new worker shows what every lifecycle should look like once signed up.
        reference = [rig.customer("Reference") for _ in range(2)]
        await asyncio.gather(*(rig.sign_up(s) for s in reference))
        await rig.settled([s.customer_id for s in reference], timeout=20)
        expected = rig.records.state(reference[0].customer_id)
        assert rig.records.state(reference[1].customer_id) == expected
        assert sorted(e[1] for e in expected["emails"]) == ["task_assigned", "welcome"]
        assert [t[1] for t in expected["tasks"]] == ["kickoff"]
        total = len(expected["emails"]) * len(ids)
        assert emails_at_kill < total, "the kill came after the work: it tested nothing"

        receipts = await asyncio.gather(*signing)
        assert all(r.new for r in receipts) and {r.customer_id for r in receipts} == set(ids)
        await rig.settled(ids, timeout=RECORD_TIMEOUT + 15)

        for customer_id in ids:
            assert rig.records.state(customer_id) == expected, customer_id
        # Each email once in the outbox, once on disk, under its own Message-ID.
        rows = [e for c in ids for e in rig.records.emails(c)]
        assert len(rows) == total == len({e.key for e in rows})
        files = {p.name: p for p in rig.outbox.iterdir()}
        assert not [n for n in files if n.endswith(".partial")]
        for row in rows:
            eml = email.message_from_bytes(
                files.pop(eml_filename(row.key)).read_bytes(), policy=default_policy
            )
            assert eml["Message-ID"] == message_id(row.key) and eml["To"] == row.to_address
        assert all(n.startswith("reference") for n in files), "an .eml without its outbox row"
        # Signing up again finds each lifecycle; nothing is sent twice.
        again = await rig.sign_up(storm[0])
        assert not again.new
        assert len(rig.records.emails(storm[0].customer_id)) == len(expected["emails"])


async def test_a_server_restart_resumes_timers_tasks_and_updates(tmp_path: Path) -> None:
    async with rig_for(tmp_path) as rig:
        customers = [rig.customer("Restart") for _ in range(3)]
        ids = [s.customer_id for s in customers]
        await asyncio.gather(*(rig.sign_up(s) for s in customers))
        await rig.settled(ids, timeout=15)
        before = {c: await lifecycles.status(rig.client, c) for c in ids}
        timers = {c: pending_timers(await rig.handle(c).fetch_history()) for c in ids}
        for c in ids:  # waiting: for the first nudge (3 days) and the kickoff reminder
            assert before[c].next_step is not None and len(timers[c]) >= 2
            now = datetime.now(UTC).replace(tzinfo=None)  # history times are naive UTC
            assert max(timers[c].values()) - now > timedelta(days=2)
        records_before = {c: rig.records.state(c) for c in ids}

        assert rig.server.stop() == 0, rig.server.log()
        rig.server.start()  # same port, same --db-filename
        await rig.reconnect()
        # The worker process was left running: it reconnects by itself.
        for c in ids:
            after = await lifecycles.status(rig.client, c)
            assert after.next_step == before[c].next_step
            assert after.open_tasks == before[c].open_tasks
            assert pending_timers(await rig.handle(c).fetch_history()) == timers[c]

        receipt = await lifecycles.complete_task(rig.client, kickoff(ids[0]))
        assert receipt.kind is TaskKind.kickoff
        [task] = rig.records.tasks(ids[0])
        assert task.status == "done" and task.result is not None  # the caller reads its write
        await lifecycles.tutorial_completed(rig.client, ids[1], "first-steps")
        await eventually(
            lambda: any(e.kind == "tutorial_completed" for e in rig.records.timeline(ids[1])),
            15,
            "the signal handled after the restart",
        )
        assert rig.records.state(ids[2]) == records_before[ids[2]]  # nothing ran twice


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, Any]]:
    """A database of our own on the machine's PostgreSQL, and an admin connection that
    can take it away from everyone and give it back."""
    import psycopg

    need_postgres()
    # The suite's PostgreSQL (TANDEM_TEST_POSTGRES_URL); the database is ours alone.
    server = database_url(POSTGRES_URL)
    libpq = server.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = psycopg.connect(libpq, autocommit=True, connect_timeout=5)
    name = f"tandem_fault_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False), (admin, name)
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


async def test_a_database_outage_is_retried_and_loses_nothing(
    tmp_path: Path, postgres_database: tuple[str, Any]
) -> None:
    url, (admin, name) = postgres_database
    async with rig_for(tmp_path, url) as rig:
        first = rig.customer("Before")
        await rig.sign_up(first)
        await rig.settled([first.customer_id], timeout=15)
        expected = rig.records.state(first.customer_id)
        rig.engine.dispose()  # our own reads must not hold connections through the outage

        # The outage: no new connections, and every open one cut.
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        down_since = asyncio.get_running_loop().time()
        during = [rig.customer("During") for _ in range(3)]
        signing = [rig.spawn(rig.sign_up(s)) for s in during]
        await lifecycles.tutorial_completed(rig.client, first.customer_id, "first-steps")

        async def retrying() -> bool:
            # The tutorial's timeline entry: an activity whose attempts the server keeps.
            # (Sign-up's own step is first tried a few times as a local activity.)
            description = await rig.handle(first.customer_id).describe()
            pending = description.raw_description.pending_activities
            # The failure itself is SQLAlchemy's, statement and parameters included: often
            # over the server's size limit for it, so only the attempt count is looked at.
            return any(a.attempt >= 3 and a.last_failure.message for a in pending)

        await eventually(retrying, 15, lambda: f"activities retrying the database\n{rig.logs()}")
        assert not any(t.done() for t in signing)  # nothing completes without its records
        await asyncio.sleep(max(0.0, 6 - (asyncio.get_running_loop().time() - down_since)))
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

        receipts = await asyncio.gather(*signing)
        assert all(r.new for r in receipts)
        ids = [s.customer_id for s in during]
        # The retry backoff reaches 16 s after a 6 s outage; then everything lands once.
        await rig.settled(ids, timeout=30)
        for customer_id in ids:
            assert rig.records.state(customer_id) == expected, customer_id

        # Its own retry lands on its own backoff, not necessarily before the sign-ups.
        def tutorials() -> list[str]:
            timeline = rig.records.timeline(first.customer_id)
            return [e.key for e in timeline if e.kind == "tutorial_completed"]

        await eventually(tutorials, 30, lambda: f"the tutorial's entry\n{rig.logs()}")
        assert tutorials() == ["tutorial:first-steps"]


async def test_signals_and_updates_sent_while_the_worker_is_down(tmp_path: Path) -> None:
    """What a caller sees with no worker:
    - a signal returns at once: the server stores it in the workflow's history, and the
      worker handles it when it is back;
    - an update cannot be accepted (only a worker runs its validator), so the call
      blocks; with a short RPC timeout it raises WorkflowUpdateRPCTimeoutOrCancelledError
      and the caller does not know the outcome. The server holds the update and delivers
      it when a worker polls again: it is applied then. Sent again with the same update
      id, it returns that one outcome (never applied twice); a retry under a new id is
      refused with "task ... is not open". (Temporal keeps an update that was not yet
      accepted in the server's memory, not in the history: a server restart in between
      would drop it, and the caller's retry with the same id would then apply it.)
    - an update sent once the worker is back is applied at once.
    """
    async with rig_for(tmp_path) as rig:
        customers = [rig.customer(name) for name in ("Signals", "Cancels", "Later")]
        ids = [s.customer_id for s in customers]
        await asyncio.gather(*(rig.sign_up(s) for s in customers))
        await rig.settled(ids, timeout=15)
        before = {c: rig.records.state(c) for c in ids}
        assert rig.worker.stop() == 0, rig.worker.log()

        await lifecycles.tutorial_completed(rig.client, ids[0], "first-steps")
        await lifecycles.cancel(rig.client, ids[1], "budget cut")
        update_id = f"complete-{uuid.uuid4().hex}"
        with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError):
            await rig.handle(ids[0]).start_update(
                CustomerLifecycle.complete_task,
                kickoff(ids[0]),
                id=update_id,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                rpc_timeout=timedelta(seconds=2),
            )
        await asyncio.sleep(1)
        assert {c: rig.records.state(c) for c in ids} == before  # nothing ran without a worker

        rig.worker.start()
        # As soon as the worker is back: the same update, by its id, and a new one.
        retried: TaskReceipt = await rig.handle(ids[0]).execute_update(
            CustomerLifecycle.complete_task, kickoff(ids[0]), id=update_id
        )
        later = await lifecycles.complete_task(rig.client, kickoff(ids[2]))
        assert retried.task_id == kickoff(ids[0]).task_id and later.kind is TaskKind.kickoff
        with pytest.raises(lifecycles.LifecycleError, match="is not open"):
            await lifecycles.complete_task(rig.client, kickoff(ids[0]))
        for customer_id in (ids[0], ids[2]):
            [task] = rig.records.tasks(customer_id)
            assert task.status == "done", customer_id
            completed = [e for e in rig.records.timeline(customer_id) if "completed" in e.kind]
            assert len([e for e in completed if e.kind != "tutorial_completed"]) == 1

        # The signals: the tutorial is recorded, the cancellation ends the lifecycle.
        await eventually(
            lambda: any(e.kind == "tutorial_completed" for e in rig.records.timeline(ids[0])),
            15,
            "the tutorial signal handled",
        )
        ended: LifecycleEnd = await asyncio.wait_for(rig.handle(ids[1]).result(), 15)
        assert ended.reason == "cancelled: budget cut"
        description = await rig.handle(ids[1]).describe()
        assert description.status is WorkflowExecutionStatus.COMPLETED
        cancelled = rig.records.state(ids[1])
        assert cancelled["phase"] == "churned"
        assert [t[2] for t in cancelled["tasks"]] == ["cancelled"]
        await eventually(
            lambda: (
                [e.status for e in rig.records.emails(ids[1]) if e.template == "farewell"]
                == ["sent"]
            ),
            15,
            "the farewell sent once",
        )
