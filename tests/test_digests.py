"""Managers' digests on Temporal's dev server (the time-skipping server has no
schedules): the schedule made idempotently, one digest per manager with their own
accounts, and a period's digest never sent twice."""

from __future__ import annotations

import email
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import ScheduleIntervalSpec
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from db.engine import session_scope
from models.digest_records import ManagerDigest
from models.tables import Customer, TaskRecord
from settings import Settings
from stack import find_binary
from worker import build_worker, schedule_digests
from workflows.digest import SCHEDULE_ID, DigestRun, ManagerDigests, period_ending, send_digests_now


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


async def schedules(env: WorkflowEnvironment) -> list[str]:
    return [s.id async for s in await env.client.list_schedules()]


async def test_schedule_is_made_once_and_follows_the_settings(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    for _ in range(2):  # two worker starts
        await schedule_digests(dev_env.client, settings)
    assert (await schedules(dev_env)).count(SCHEDULE_ID) == 1
    described = await dev_env.client.get_schedule_handle(SCHEDULE_ID).describe()
    [interval] = described.schedule.spec.intervals
    # Weekly, Mondays at 08:00 UTC: the Unix epoch was a Thursday, four days earlier.
    assert interval == ScheduleIntervalSpec(
        every=timedelta(days=7), offset=timedelta(days=4, hours=8)
    )

    daily = settings.model_copy(update={"digest_every_days": 1, "digest_time_of_day": time(6, 30)})
    await schedule_digests(dev_env.client, daily)
    assert (await schedules(dev_env)).count(SCHEDULE_ID) == 1
    described = await dev_env.client.get_schedule_handle(SCHEDULE_ID).describe()
    assert described.schedule.spec.intervals == [
        ScheduleIntervalSpec(every=timedelta(days=1), offset=timedelta(hours=6, minutes=30))
    ]
    monday = period_ending(
        datetime(2026, 12, 9, 12, tzinfo=UTC), timedelta(days=7), interval.offset
    )
    assert monday.end == datetime(2026, 12, 7, 8, tzinfo=UTC)  # a Monday
    assert monday.start == datetime(2026, 11, 30, 8, tzinfo=UTC)


def _customer(session: Session, name: str, owner: str | None, now: datetime, **kw) -> str:  # type: ignore[no-untyped-def]
    customer_id = f"c-{name.lower()}-{uuid.uuid4().hex[:4]}"
    values = dict(
        id=customer_id,
        company=name,
        contact_name="Pat",
        email=f"pat@{name.lower()}.test",
        owner=owner,
        plan_name="default",
        plan_version=1,
        phase="adopting",
        term_start=now - timedelta(days=200),
        term_end=now + timedelta(days=165),
    )
    session.add(Customer(**{**values, **kw}))
    return customer_id


def _task(session: Session, customer_id: str, title: str, due: datetime, escalated: bool) -> None:
    session.add(
        TaskRecord(
            id=f"{customer_id}:t1:{title.lower().replace(' ', '-')}",
            customer_id=customer_id,
            kind="review_call",
            title=title,
            owner_role="manager",
            assignee="ada@team.test",
            status="open",
            due_at=due,
            created_at=due - timedelta(days=7),
            escalated=escalated,
        )
    )


def seed(engine: Engine, now: datetime) -> None:
    """Ada has four accounts, Bo one; one account has no owner."""
    with session_scope(engine) as session:
        moved = _customer(
            session, "Movedco", "ada@team.test", now,
            quadrant="unhappy_profitable", previous_quadrant="happy_profitable",
            assessed_at=now - timedelta(days=2), at_risk=True,
        )  # fmt: skip
        _customer(session, "Renewco", "ada@team.test", now, term_end=now + timedelta(days=30))
        late = _customer(session, "Lateco", "ada@team.test", now)
        _task(session, late, "Review call", now - timedelta(days=1), escalated=False)
        _task(session, moved, "Alignment call", now - timedelta(days=4), escalated=True)
        _customer(session, "Goneco", "ada@team.test", now, phase="churned")
        _customer(session, "Steadyco", "bo@team.test", now, quadrant="happy_profitable")
        _customer(session, "Orphanco", None, now)


def sent_mail(outbox: Path) -> dict[str, str]:
    """Each .eml in the outbox: To -> its text part."""
    found = {}
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        found[message["To"]] = text.get_payload(decode=True).decode()
    return found


async def test_one_digest_per_manager_with_their_accounts_sent_once_per_period(
    dev_env: WorkflowEnvironment, settings: Settings, engine: Engine
) -> None:
    seed(engine, datetime.now(UTC))
    queue = f"digests-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, settings, engine, task_queue=queue):
        receipts = await send_digests_now(dev_env.client, timedelta(days=7), queue)
        assert sorted((r.manager, r.accounts) for r in receipts) == [
            ("ada@team.test", 3),
            ("bo@team.test", 1),
            (settings.managers_email, 1),
        ]
        mail = sent_mail(settings.outbox_dir)
        assert set(mail) == {"ada@team.test", "bo@team.test", settings.managers_email}
        ada = mail["ada@team.test"]
        moved_section = ada.split("Moved in the quadrant (1):")[1].split("At risk")[0]
        assert "Movedco: happy_profitable -> unhappy_profitable" in moved_section
        assert "At risk (1):\n- Movedco" in ada
        assert "Overdue tasks (1):\n- Review call (Lateco)" in ada
        assert "Escalated tasks (1):\n- Alignment call (Movedco)" in ada
        assert "Renewals in the next 90 days (1):\n- Renewco" in ada
        assert f"{settings.public_url}/app/customers/c-movedco-" in ada
        for other in ("Steadyco", "Orphanco", "Goneco"):
            assert other not in ada
        assert "Your book of business (3 accounts)" in ada
        bo = mail["bo@team.test"]
        assert "Your book of business (1 account)" in bo and "Movedco" not in bo

        # Two scheduled runs for one period (a run retried after its worker died is the
        # same): the second sends nothing.
        for attempt in range(2):
            again = await dev_env.client.execute_workflow(
                ManagerDigests.run,
                DigestRun(every=timedelta(days=7)),
                id=f"digest-{queue}-{attempt}",
                task_queue=queue,
            )
            assert all(r.already_sent for r in again) == (attempt == 1)
    with Session(engine) as session:
        rows = session.exec(select(ManagerDigest)).all()
    assert len(rows) == 6 and all(r.status == "sent" for r in rows)  # two periods x three
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 6


async def test_managers_come_from_the_staff(
    dev_env: WorkflowEnvironment, settings: Settings, engine: Engine
) -> None:
    """Every active manager gets one, even with an empty book; an account whose owner has
    left (inactive) or who is no manager goes to the managers' team address."""
    from db.staff import add_staff, set_active

    now = datetime.now(UTC)
    add_staff(engine, "Ada", "ada@team.test", "manager", "test")
    add_staff(engine, "Cy", "cy@team.test", "manager", "test")
    add_staff(engine, "Dee", "dee@team.test", "manager", "test")
    add_staff(engine, "Riley", "riley@team.test", "rep", "test")
    set_active(engine, "dee@team.test", False, "test")
    with session_scope(engine) as session:
        _customer(session, "Adaco", "ada@team.test", now)
        _customer(session, "Leftco", "dee@team.test", now)
        _customer(session, "Repco", "riley@team.test", now)
    queue = f"digests-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, settings, engine, task_queue=queue):
        receipts = await send_digests_now(dev_env.client, timedelta(days=7), queue)
    assert sorted((r.manager, r.accounts) for r in receipts) == [
        ("ada@team.test", 1),
        ("cy@team.test", 0),
        (settings.managers_email, 2),
    ]
    mail = sent_mail(settings.outbox_dir)
    assert "Your book of business (0 accounts)" in mail["cy@team.test"]
