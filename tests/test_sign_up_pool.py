"""Sign-up's activity in processes of its own (activities/sign_up_pool.py): it lands in
the records, a failure there keeps its meaning, a lost process is replaced, and the
worker stops the pool with itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.contracts import AccountOpened, AccountOpening
from activities.email import EmailActivities
from activities.sign_up_pool import SignUpPool
from db.engine import make_engine, session_scope
from models.tables import Customer, OutboxEmail
from settings import Settings
from tests.conftest import Harness, Lifecycle
from tests.fault_support import wait_until
from tests.test_email import NOW, account_opening, make_settings
from tests.test_reviews_and_mail import customer_of
from worker import _worker, build_worker


def pool_settings(settings: Settings, processes: int = 1) -> Settings:
    return settings.model_copy(update={"sign_up_processes": processes})


def pool_pids(pool: SignUpPool) -> list[int]:
    return list(pool._pool._processes)  # the executor's own map of its processes


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # ended and reaped
        return False
    # A child that ended is a zombie until reaped: gone all the same.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def openings_seen(monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> list[str]:
    """The customers whose opening `cls.method` was called with, in this process."""
    seen: list[str] = []
    original = getattr(cls, method)

    def spy(self: object, opening: AccountOpening) -> AccountOpened:
        seen.append(opening.snapshot.customer.customer_id)
        return original(self, opening)

    monkeypatch.setattr(cls, method, spy)
    return seen


def opening_for(name: str) -> AccountOpening:
    customer_id = f"{name}-{uuid.uuid4().hex[:6]}"
    return account_opening(customer_id, name.title(), f"ops@{name}.test", NOW)


async def test_sign_up_runs_in_the_pool_and_lands_in_the_records(
    harness: Harness, default_plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sign-up's update answers, its records and both emails are there, and the
    worker's own process never ran open_account: the pool did."""
    in_worker = openings_seen(monkeypatch, EmailActivities, "open_account_here")
    settings = pool_settings(harness.settings)
    queue = f"{harness.task_queue}-pool"
    async with build_worker(harness.client, settings, harness.engine, task_queue=queue) as worker:
        assert worker.sign_up_pool is not None
        customer: Lifecycle = customer_of(harness, settings, queue, "Pooled Ltd", default_plan)
        receipt = await customer.sign_up()
        assert receipt.new
        await harness.terminate_all()
    assert in_worker == []
    with session_scope(harness.engine) as session:
        row = session.get(Customer, customer.customer_id)
        assert row is not None and row.company == "Pooled Ltd"
        mine = select(OutboxEmail).where(OutboxEmail.customer_id == customer.customer_id)
        emails = {e.template: e.status for e in session.exec(mine)}
    assert emails == {"welcome": "sent", "task_assigned": "sent"}


async def test_a_pool_that_cannot_start_never_stops_the_worker(
    harness: Harness, default_plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processes that die as they start (here: records they cannot open) break the
    pool on every try. Temporal's worker stops altogether on an activity's
    BrokenExecutor, so the pool must not let one out: the sign-up goes on as a regular
    activity on the worker's threads, and the worker goes on too."""
    settings = pool_settings(harness.settings)
    unreachable = make_url("postgresql+nosuchdriver://nowhere/tandem")
    pool = SignUpPool(settings, unreachable, 1)
    queue = f"{harness.task_queue}-broken"
    tries = openings_seen(monkeypatch, SignUpPool, "open_account")
    async with _worker(harness.client, settings, harness.engine, queue, pool):
        customer: Lifecycle = customer_of(harness, settings, queue, "Broken Pool", default_plan)
        receipt = await customer.sign_up()
        assert receipt.new and tries  # the pool was tried, and failed
        again = customer_of(harness, settings, queue, "After Break", default_plan)
        assert (await again.sign_up()).new  # the worker still runs
        await harness.terminate_all()
    with session_scope(harness.engine) as session:
        for company in (customer, again):
            row = session.get(Customer, company.customer_id)
            assert row is not None


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # about processes, not SQL
def test_a_failure_in_the_pool_keeps_its_type_and_retry_flag(
    engine: Engine, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    pool = SignUpPool(settings, engine.url, 1)
    try:
        unknown = opening_for("typo")
        unknown.welcome.template = "welcom"
        with pytest.raises(ApplicationError) as refused:
            pool.open_account(unknown)
        assert (refused.value.type, refused.value.non_retryable) == ("UnknownTemplate", True)
    finally:
        pool.close()
    # A database without Tandem's tables: SQLAlchemy's error reaches the worker by
    # name, retryable (Temporal tries again, then the regular activity takes over).
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    pool = SignUpPool(settings, empty.url, 1)
    try:
        with pytest.raises(ApplicationError) as failed:
            pool.open_account(opening_for("nowhere"))
        assert failed.value.type == "OperationalError"
        assert "no such table" in failed.value.message and not failed.value.non_retryable
    finally:
        pool.close()
        empty.dispose()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # about processes, not SQL
def test_a_process_that_died_is_replaced_and_nothing_is_done_twice(
    engine: Engine, tmp_path: Path
) -> None:
    pool = SignUpPool(make_settings(tmp_path), engine.url, 1)
    try:
        first = opening_for("before")
        assert pool.open_account(first).welcome.already_delivered
        [pid] = pool_pids(pool)
        os.kill(pid, signal.SIGKILL)
        second = opening_for("after")
        assert pool.open_account(second).welcome.already_delivered
        assert pool_pids(pool) != [pid]
        # A retry of the first finds it done: one welcome each, each sent once.
        assert pool.open_account(first).welcome.already_delivered
    finally:
        pool.close()
    with session_scope(engine) as session:
        welcomes = session.exec(select(OutboxEmail).where(OutboxEmail.template == "welcome"))
        sent = sorted((w.customer_id.split("-")[0], w.attempts) for w in welcomes)
    assert sent == [("after", 1), ("before", 1)]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 4


@pytest.mark.parametrize("stop", ["shut down", "cancelled"])
async def test_the_worker_stops_its_pool_however_it_stops(harness: Harness, stop: str) -> None:
    """`async with` shuts the worker down; `tandem worker` runs it until Ctrl-C
    cancels the run."""
    settings = pool_settings(harness.settings, 2)
    queue = f"{harness.task_queue}-stop"
    worker = build_worker(harness.client, settings, harness.engine, task_queue=queue)
    assert worker.sign_up_pool is not None
    pids = pool_pids(worker.sign_up_pool)
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(1)
    if stop == "shut down":
        await worker.shutdown()
        await running
    else:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert not any(alive(pid) for pid in pids)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_records_in_memory_get_no_pool(harness: Harness) -> None:
    """A SQLite in memory is the worker's alone: its sign-ups stay on its threads."""
    memory = make_engine("sqlite://")
    settings = pool_settings(harness.settings, 2)
    worker = build_worker(harness.client, settings, memory, task_queue="unused")
    assert worker.sign_up_pool is None
    memory.dispose()


# A worker's process in miniature: a pool, its processes started, then an idle wait.
OWNER = """
import sys, time
from activities.sign_up_pool import SignUpPool
from bench.common import tandem_settings
from db.engine import make_engine
from pathlib import Path
if __name__ == "__main__":
    settings = tandem_settings(Path(sys.argv[1]))
    pool = SignUpPool(settings, make_engine(settings.resolved_database_url).url, 2)
    time.sleep(3)  # their imports and start-up done
    print(*pool._pool._processes, flush=True)
    time.sleep(600)
"""


def test_the_pool_leaves_with_a_worker_killed_outright(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "var")],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        assert owner.stdout is not None
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    finally:
        owner.kill()
        owner.wait()
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "the pool's processes left")
