"""Shared fixtures: the real time-skipping Temporal test server, real records per test
(a SQLite file, and a fresh schema on the real PostgreSQL), and the real worker with
every activity."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from db.engine import database_url, make_engine
from db.migrate import upgrade
from settings import Settings
from stack import find_binary
from worker import build_worker, ensure_search_attributes

ACTIVITY_STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


# -- the records: every test on the `engine` fixture runs on SQLite and on PostgreSQL ----

DATABASES = ["sqlite", "postgresql"]
# A database the tests may create schemas in (each test its own, dropped after).
POSTGRES_URL = os.environ.get(
    "TANDEM_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
_postgres_checked: list[str | None] = []  # [why it is unusable, or None], once a session


def postgres_unavailable() -> str | None:
    """Why the test PostgreSQL cannot be used, or None; asked once per session, so a
    missing server costs one connection timeout, not one per test."""
    if not _postgres_checked:
        url = database_url(POSTGRES_URL)
        where = f"{url.host}:{url.port or 5432}"
        try:
            probe = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
            try:
                with probe.connect():
                    _postgres_checked.append(None)
            finally:
                probe.dispose()
        except Exception as error:  # no driver, no server, no access: not usable here
            lines = str(error).strip().splitlines() or [type(error).__name__]
            _postgres_checked.append(f"PostgreSQL not reachable at {where}: {lines[0]}")
    return _postgres_checked[0]


def need_postgres() -> None:
    """Skips the test when the test PostgreSQL is absent; with
    TANDEM_TEST_REQUIRE_POSTGRES=1 (CI) that is a failure instead, so a broken service
    cannot pass as a green build."""
    reason = postgres_unavailable()
    if reason is not None:
        if os.environ.get("TANDEM_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A new empty schema on the test PostgreSQL, dropped afterwards. Yields a URL whose
    connections see only that schema (search_path), so tests and runs never meet.

    Skips the test when PostgreSQL is absent; with TANDEM_TEST_REQUIRE_POSTGRES=1 (CI)
    that is a failure instead, so a broken service cannot pass as a green build."""
    need_postgres()
    name = f"tandem_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url(POSTGRES_URL), poolclass=NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    url = database_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            # A connection left open by the test would hold locks: fail, do not hang.
            connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


def _database(request: pytest.FixtureRequest) -> str:
    """The database the test's `engine` runs on (SQLite for a test without one)."""
    callspec = getattr(request.node, "callspec", None)
    return callspec.params.get("engine", "sqlite") if callspec is not None else "sqlite"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The settings of a test; their database URL is the one the `engine` fixture uses,
    so code that connects by the settings (the API, the CLI) sees the same records."""
    # The strict sandbox: a clock, randomness or I/O in workflow code fails the test.
    values = dict(
        var_dir=tmp_path / "var",
        smtp_host=None,
        plans_dir=None,
        workflow_sandbox=True,
    )
    if _database(request) == "postgresql":
        with postgres_schema() as url:
            yield Settings(**values, database_url=url)
    else:
        yield Settings(**values, database_url=None)


@pytest.fixture(params=DATABASES, ids=DATABASES)
def engine(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Engine]:
    """The records, migrated to the latest revision, on SQLite then on PostgreSQL."""
    assert _database(request) == request.param
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _attempt_under_way(pending: PendingActivityInfo) -> bool:
    """The test server shows an activity STARTED between its attempts too; one whose
    last attempt ended after it started is waiting out its retry's backoff."""
    if pending.state != ACTIVITY_STARTED:
        return False
    ended = pending.last_attempt_complete_time.ToNanoseconds()
    return ended < pending.last_started_time.ToNanoseconds()


class Harness:
    """What a workflow test needs: the client, the queue, the records, the settings."""

    def __init__(
        self, env: WorkflowEnvironment, settings: Settings, engine: Engine, queue: str
    ) -> None:
        self.env, self.settings, self.engine, self.task_queue = env, settings, engine, queue
        self.workflow_ids: set[str] = set()

    async def terminate_all(self) -> None:
        """The time-skipping server stops skipping while any workflow has work pending,
        so a test's lifecycles must not outlive its worker."""
        for workflow_id in self.workflow_ids:
            handle = self.client.get_workflow_handle(workflow_id)
            with contextlib.suppress(RPCError):
                # Terminating with an activity in flight leaves the test server's clock
                # locked for every later test: let the activities finish first.
                # On a loaded machine an activity can take seconds: wait as long as a
                # skip's own deadline would, then terminate whatever is left.
                quiet, deadline = 0, asyncio.get_running_loop().time() + 30
                while asyncio.get_running_loop().time() < deadline:
                    described = await handle.describe()
                    if described.status is not WorkflowExecutionStatus.RUNNING:
                        break  # ended already (the test terminated it): nothing to wait for
                    raw = described.raw_description
                    # Running work locks the clock; an activity waiting out a retry's
                    # backoff does not.
                    running = [p for p in raw.pending_activities if _attempt_under_way(p)]
                    busy = running or raw.HasField("pending_workflow_task")
                    quiet = 0 if busy else quiet + 1
                    if quiet == 3:
                        break
                    await asyncio.sleep(0.02)
                await handle.terminate("test over")

    @property
    def client(self) -> Client:
        return self.env.client


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, settings: Settings, engine: Engine
) -> AsyncIterator[Harness]:
    queue = f"tandem-test-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_skipping_env.client, settings, engine, task_queue=queue):
        harness = Harness(time_skipping_env, settings, engine, queue)
        yield harness
        await harness.terminate_all()


# -- helpers the lifecycle tests share ----------------------------------------------------

from datetime import datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from sqlmodel import Session, select  # noqa: E402

import lifecycles  # noqa: E402
from db.ingest import record_signals  # noqa: E402
from models.customer import SignUp, workflow_id_for  # noqa: E402
from models.lifecycle import LifecycleEnd, LifecycleStatus, SignupReceipt  # noqa: E402
from models.plan import PlanTemplate  # noqa: E402
from models.signals import SignalIn, SignalKind  # noqa: E402
from models.tables import OutboxEmail, TaskRecord  # noqa: E402
from models.tasks import TaskCompletion, TaskKey, TaskReceipt  # noqa: E402
from plans import load_plan  # noqa: E402
from workflows.lifecycle import CustomerLifecycle  # noqa: E402


class Lifecycle:
    """One customer driven through the real worker, as a success team would."""

    def __init__(self, harness: Harness, signup: SignUp, plan: PlanTemplate) -> None:
        self.h, self.signup, self.plan = harness, signup, plan
        self.customer_id = signup.customer_id
        harness.workflow_ids.add(workflow_id_for(self.customer_id))

    async def sign_up(self) -> SignupReceipt:
        return await lifecycles.sign_up(self.h.client, self.signup, self.plan, self.h.task_queue)

    async def status(self) -> LifecycleStatus:
        return await lifecycles.status(self.h.client, self.customer_id)

    async def advance(self, **delta: float) -> None:
        await self.h.env.sleep(timedelta(**delta))

    async def now(self) -> datetime:
        return await self.h.env.get_current_time()

    async def complete(self, task_id: str, result: dict[str, Any]) -> TaskReceipt:
        completion = TaskCompletion(task_id=task_id, completed_by="ada.manager", result=result)
        return await lifecycles.complete_task(self.h.client, completion)

    async def signals(self, **values: float | list[float]) -> None:
        at = await self.now()
        items = []
        for kind, value in values.items():
            for v in value if isinstance(value, list) else [value]:
                items.append(
                    SignalIn(
                        customer_id=self.customer_id, kind=SignalKind(kind), value=v, observed_at=at
                    )
                )
                at += timedelta(seconds=1)
        record_signals(self.h.engine, items)

    def emails(self, template: str | None = None) -> list[OutboxEmail]:
        with Session(self.h.engine) as session:
            query = select(OutboxEmail).where(OutboxEmail.customer_id == self.customer_id)
            if template:
                query = query.where(OutboxEmail.template == template)
            return list(session.exec(query).all())

    def task_row(self, task_id: str) -> TaskRecord | None:
        with Session(self.h.engine) as session:
            return session.get(TaskRecord, task_id)

    def task_id(self, key: str, term: int = 1) -> str:
        return str(TaskKey(self.customer_id, term, key))

    def handle(self) -> WorkflowHandle[CustomerLifecycle, LifecycleEnd]:
        return self.h.client.get_workflow_handle_for(
            CustomerLifecycle.run, workflow_id_for(self.customer_id)
        )


@pytest.fixture
def default_plan() -> PlanTemplate:
    return load_plan("default")


@pytest.fixture
def acme(harness: Harness, default_plan: PlanTemplate) -> Lifecycle:
    signup = SignUp(
        company="Acme Analytics",
        contact_name="Ada Lovelace",
        email=f"ada-{uuid.uuid4().hex[:6]}@acme.test",
        plan="default",
    )
    return Lifecycle(harness, signup, default_plan)
