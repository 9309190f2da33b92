"""The records behave the same on PostgreSQL as on SQLite: every test here takes the
`engine` fixture, so it runs on both. URL forms, timezone-aware times, JSON columns,
case-insensitive lookups, filters and keyset pages, every idempotent write under races
(the IntegrityError retries), and the lists reading their indexes in order."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import StatementError
from sqlmodel import Session, func, select

from activities.assessment import AssessmentActivities
from activities.contracts import (
    AssessmentRequest,
    EmailRequest,
    LifecycleSnapshot,
    Recipient,
    TaskUpdate,
    TimelineEntry,
)
from activities.email import EmailActivities
from activities.records import RecordActivities
from db.engine import database_url, make_engine, session_scope
from db.ingest import record_signals
from db.queries import (
    CustomerFilters,
    customer_overview,
    find_customer,
    latest_assessment,
    latest_goal_values,
    list_tasks,
    search_customers,
    task_inbox,
)
from models.customer import CustomerProfile
from models.lifecycle import Phase
from models.plan import ScoringSettings
from models.roles import Role
from models.signals import SignalIn, SignalKind
from models.tables import (
    AssessmentRecord,
    Customer,
    OutboxEmail,
    SignalRecord,
    SuccessPlanRecord,
    TaskRecord,
    TimelineEvent,
)
from models.tasks import Task, TaskKind, TaskStatus
from settings import Settings
from tests.conftest import postgres_schema

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def customer(id: str, **values: Any) -> Customer:
    defaults: dict[str, Any] = dict(
        company=id.title(), contact_name="Ada", email=f"ada@{id}.test", plan_name="default",
        plan_version=1, phase="onboarding", term_start=NOW, term_end=NOW + timedelta(days=365),
    )  # fmt: skip
    return Customer(id=id, **(defaults | values))


def add(engine: Engine, *rows: Any) -> None:
    with session_scope(engine) as session:
        session.add_all(rows)


def race(times: int, work: Callable[[], Any]) -> list[BaseException]:
    """Run `work` in `times` threads released together; the errors they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(times)

    def run() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as error:  # collected: a thread's failure must fail the test
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


# -- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p%40ss@db:5432/tandem", "postgresql+psycopg://u:p%40ss@db:5432/tandem"),
        ("postgresql://u@db/tandem?sslmode=require", "postgresql+psycopg://u@db/tandem?sslmode=require"),
        ("postgresql+psycopg://u@db/tandem", "postgresql+psycopg://u@db/tandem"),
        ("sqlite:///var/tandem.db", "sqlite:///var/tandem.db"),
    ],
)  # fmt: skip
def test_database_urls_use_psycopg_3(given: str, expected: str) -> None:
    url = database_url(given)
    assert url.render_as_string(hide_password=False) == expected
    assert url.password in (None, "p@ss")


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_every_postgres_url_form_connects_in_utc(scheme: str) -> None:
    with postgres_schema() as url:
        engine = make_engine(url.replace("postgresql+psycopg", scheme, 1))
        try:
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SHOW TIME ZONE").scalar() == "UTC"
                assert connection.exec_driver_sql("SELECT current_schema()").scalar() in url
        finally:
            engine.dispose()


# -- types ---------------------------------------------------------------------------------


def test_times_are_stored_in_utc_and_read_back_aware(engine: Engine) -> None:
    ahead = timezone(timedelta(hours=5, minutes=30))
    start = datetime(2026, 3, 1, 15, 0, 0, 123456, tzinfo=ahead)
    add(engine, customer("acme", term_start=start, term_end=start + timedelta(days=365)))
    with Session(engine) as session:
        row = session.get(Customer, "acme")
        assert row is not None
        assert row.term_start == start and row.term_start.utcoffset() == timedelta(0)
        assert row.term_start.isoformat() == "2026-03-01T09:30:00.123456+00:00"
        assert row.created_at.tzinfo is not None
        # Compared in SQL with an aware value in yet another zone.
        west = timezone(timedelta(hours=-8))
        due = datetime(2027, 3, 1, 1, 30, 1, tzinfo=west)  # 09:30:01 UTC, a second after
        assert [c.id for c in search_customers(session, CustomerFilters(renewal_before=due),
                                                None, 10)] == ["acme"]  # fmt: skip
        early = due - timedelta(seconds=2)
        assert search_customers(session, CustomerFilters(renewal_before=early), None, 10) == []


def test_a_naive_time_is_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        add(engine, customer("acme", term_start=datetime(2026, 1, 1)))


def test_json_columns_round_trip(engine: Engine) -> None:
    detail = {
        "quadrant": "happy_profitable", "inputs": {"nps": [9.0, 10.0], "usage": None},
        "missing": [], "risks": ["neutral_high_profit"], "flag": True, "level": 0.125,
        "note": "Zoë's “team” ✓",
    }  # fmt: skip
    add(engine, customer("acme"))
    add(
        engine,
        SuccessPlanRecord(
            customer_id="acme", version=1, author="sam", intended_use="pipeline",
            success_definition="every rep", objectives=["Retire the spreadsheet", "ünïcode"],
            constraints=[], created_at=NOW,
        ),
        AssessmentRecord(
            customer_id="acme", key="check_in-1", assessed_at=NOW, quadrant="happy_profitable",
            detail=detail,
        ),
        TaskRecord(
            id="acme:t1:kickoff", customer_id="acme", kind="kickoff", title="Kickoff",
            owner_role="manager", status="open", due_at=NOW, created_at=NOW, result=None,
        ),
    )  # fmt: skip
    with Session(engine) as session:
        plan = session.exec(select(SuccessPlanRecord)).one()
        assert plan.objectives == ["Retire the spreadsheet", "ünïcode"] and plan.constraints == []
        assert session.exec(select(AssessmentRecord)).one().detail == detail
        task = session.get(TaskRecord, "acme:t1:kickoff")
        assert task is not None and task.result is None
        task.result = {"held": True, "notes": "fine"}
        session.add(task)
        session.commit()
    with Session(engine) as session:
        task = session.get(TaskRecord, "acme:t1:kickoff")
        assert task is not None and task.result == {"held": True, "notes": "fine"}


# -- reads ---------------------------------------------------------------------------------


def test_find_customer_ignores_case(engine: Engine) -> None:
    add(engine, customer("acme-1", company="Acme Analytics", external_id="CRM-42"))
    with Session(engine) as session:
        assert find_customer(session, "ACME analytics").id == "acme-1"
        assert find_customer(session, "CRM-42").id == "acme-1"
        assert session.exec(select(func.lower(Customer.company))).one() == "acme analytics"


def test_filters_and_keyset_pages(engine: Engine) -> None:
    quadrants = ["happy_profitable", "unhappy_profitable", "unknown"]
    add(
        engine,
        *[
            customer(
                f"c{n:02d}", quadrant=quadrants[n % 3], phase="adopting" if n % 2 else "renewal",
                owner="sam" if n % 4 == 0 else None, at_risk=n % 5 == 0,
                term_end=NOW + timedelta(days=n),
            )
            for n in range(30)
        ],
    )  # fmt: skip

    def pages(filters: CustomerFilters) -> list[str]:
        seen: list[str] = []
        with Session(engine) as session:
            while True:
                page = search_customers(session, filters, seen[-1] if seen else None, 4)
                seen += [c.id for c in page]
                if len(page) < 4:
                    return seen

    everyone = [f"c{n:02d}" for n in range(30)]
    assert pages(CustomerFilters()) == everyone
    assert pages(CustomerFilters(quadrant="unknown")) == everyone[2::3]
    assert pages(CustomerFilters(phase="renewal")) == everyone[::2]
    assert pages(CustomerFilters(owner="sam")) == everyone[::4]
    assert pages(CustomerFilters(at_risk=True)) == everyone[::5]
    assert pages(CustomerFilters(at_risk=False)) == [c for c in everyone if c not in everyone[::5]]
    due = NOW + timedelta(days=7)
    assert pages(CustomerFilters(renewal_before=due)) == everyone[:7]
    both = CustomerFilters(quadrant="happy_profitable", phase="renewal", renewal_before=due)
    assert pages(both) == ["c00", "c06"]


# -- idempotent writes -----------------------------------------------------------------------


def snapshot(**values: Any) -> LifecycleSnapshot:
    profile = CustomerProfile(
        customer_id="acme", company="Acme", contact_name="Ada", email="ada@acme.test"
    )
    defaults: dict[str, Any] = dict(
        customer=profile, plan_name="default", plan_version=1, phase=Phase.onboarding, term=1,
        term_start=NOW, term_end=NOW + timedelta(days=365), onboarded=False,
    )  # fmt: skip
    return LifecycleSnapshot(**(defaults | values))


def count(engine: Engine, table: type[Any]) -> int:
    with Session(engine) as session:
        return len(session.exec(select(table)).all())


def test_lifecycle_and_timeline_writes_are_idempotent_under_races(engine: Engine) -> None:
    records = RecordActivities(engine)
    assert race(6, lambda: records.record_lifecycle(snapshot())) == []
    records.record_lifecycle(snapshot(phase=Phase.adopting, onboarded=True))
    with Session(engine) as session:
        row = session.get(Customer, "acme")
        assert row is not None and row.phase == "adopting" and row.onboarded
    entry = TimelineEntry(customer_id="acme", key="welcome", at=NOW, kind="email", message="Hi")
    assert race(6, lambda: records.record_event(entry)) == []
    records.record_event(entry)
    assert count(engine, Customer) == 1 and count(engine, TimelineEvent) == 1


def test_task_writes_are_idempotent_under_races(engine: Engine) -> None:
    records = RecordActivities(engine)
    records.record_lifecycle(snapshot())
    task = Task(
        task_id="acme:t1:kickoff", customer_id="acme", kind=TaskKind.kickoff, title="Kickoff",
        owner_role=Role.manager, due_at=NOW + timedelta(days=7), created_at=NOW,
    )  # fmt: skip
    opened = TimelineEntry(
        customer_id="acme", key="acme:t1:kickoff:opened", at=NOW, kind="task", message="Open"
    )
    assert race(6, lambda: records.record_task(TaskUpdate(task=task, event=opened))) == []
    reminded = task.model_copy(update={"reminded": True})
    event = opened.model_copy(update={"key": "acme:t1:kickoff:reminded"})
    records.record_task(TaskUpdate(task=reminded, event=event))
    with Session(engine) as session:
        row = session.get(TaskRecord, "acme:t1:kickoff")
        assert row is not None and row.reminded and row.status == TaskStatus.open.value
        assert row.due_at == NOW + timedelta(days=7)
    assert count(engine, TaskRecord) == 1 and count(engine, TimelineEvent) == 2


def test_outbox_stores_one_email_and_counts_every_attempt(engine: Engine, tmp_path: Path) -> None:
    RecordActivities(engine).record_lifecycle(snapshot())
    emails = EmailActivities(engine, Settings(var_dir=tmp_path, smtp_host=None))
    request = EmailRequest(
        key="acme:t1:farewell", template="farewell", customer_id="acme",
        to=Recipient.customer, context={"reason": "churned at renewal: budget"},
    )  # fmt: skip
    receipts: list[Any] = []
    assert race(6, lambda: receipts.append(emails.compose_email(request))) == []
    assert len({r.key for r in receipts}) == 1 and count(engine, OutboxEmail) == 1
    # Failed attempts are counted in SQL (UPDATE ... SET attempts = attempts + 1).
    assert race(4, lambda: emails._record([request.key], last_error="timeout")) == []
    emails.deliver_email(request.key)
    emails.deliver_email(request.key)  # already sent: neither sent nor counted again
    with Session(engine) as session:
        row = session.exec(select(OutboxEmail)).one()
        assert row.status == "sent" and row.attempts == 5 and row.delivered_via == "file"
        assert row.delivered_at is not None and row.delivered_at.utcoffset() == timedelta(0)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_signals_and_assessments_are_stored_once(engine: Engine) -> None:
    RecordActivities(engine).record_lifecycle(snapshot())
    signals = [
        SignalIn(customer_id="acme", kind=SignalKind.nps, value=v, observed_at=NOW - timedelta(
            days=d), client_id=f"survey-{d}")
        for v, d in ((9, 1), (10, 2), (8, 3))
    ]  # fmt: skip
    assert record_signals(engine, signals) == 3
    assert record_signals(engine, signals) == 0
    assessments = AssessmentActivities(engine)
    request = AssessmentRequest(
        customer_id="acme", key="check_in-1", as_of=NOW, scoring=ScoringSettings()
    )
    first = assessments.assess_account(request)
    assert assessments.assess_account(request) == first
    assert count(engine, SignalRecord) == 3 and count(engine, AssessmentRecord) == 1
    # Attempts racing each other (a timed-out one beside its retry) agree on one answer.
    raced: list[Any] = []
    again = request.model_copy(update={"key": "check_in-2"})
    assert race(6, lambda: raced.append(assessments.assess_account(again))) == []
    assert len(raced) == 6 and all(a == raced[0] for a in raced)
    assert count(engine, AssessmentRecord) == 2
    with Session(engine) as session:
        stored = latest_assessment(session, "acme")
        assert stored is not None and stored.assessed_at == NOW
        assert stored.detail == first.model_dump(mode="json") and "nps" in first.inputs


def test_assessments_at_once_take_turns_on_the_customer_row(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check-ins and reassessments at once, recorded in any order: the customer row keeps
    the newest two (each took its turn on the row, none overwrote another's). On SQLite
    also as before 3.35, which cannot return the row its UPDATE locks."""
    RecordActivities(engine).record_lifecycle(snapshot())
    assessments = AssessmentActivities(engine)
    ways = [True, False] if engine.dialect.name == "sqlite" else [True]
    for day, returning in enumerate(ways):
        monkeypatch.setattr(engine.dialect, "update_returning", returning)
        start = NOW + timedelta(days=day)
        assert (
            race_assessments(assessments, [start + timedelta(hours=h) for h in (5, 1, 4, 2, 6, 3)])
            == []
        )
        with Session(engine) as session:
            customer = session.get(Customer, "acme")
            assert customer is not None
            assert customer.assessed_at == start + timedelta(hours=6)
            assert customer.previous_assessed_at == start + timedelta(hours=5)


def race_assessments(assessments: AssessmentActivities, times: list[datetime]) -> list[Any]:
    """Assess the account as of each time, in threads released together."""
    pending: queue.Queue[datetime] = queue.Queue()
    for at in times:
        pending.put(at)

    def assess_next() -> None:
        at = pending.get()
        key = f"reassess-{at.isoformat()}"
        request = AssessmentRequest(
            customer_id="acme", key=key, as_of=at, scoring=ScoringSettings()
        )
        assessments.assess_account(request)

    return race(len(times), assess_next)


# -- the lists read their indexes --------------------------------------------------------------


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL the code under test sends, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def plan_of(engine: Engine, statement: str, parameters: Any) -> str:
    """The planner's choice, with sorts and full scans made a last resort on PostgreSQL
    (its tables are empty here, where a scan would always win): what is left is the path
    the indexes allow."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in rows)
        for setting in ("enable_seqscan", "enable_sort", "enable_bitmapscan"):
            connection.exec_driver_sql(f"SET LOCAL {setting} = off")
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(str(row[0]) for row in rows)


def sorts(plan: str) -> bool:
    return "TEMP B-TREE" in plan or "Sort" in plan


LISTS: list[tuple[str, Callable[[Session], Any], str, str]] = [
    # (what, call, the table its query reads, the index it should read in order)
    ("customers by quadrant",
     lambda s: search_customers(s, CustomerFilters(quadrant="unknown"), "c1", 50),
     "customer", "ix_customer_quadrant_id"),
    ("customers by phase",
     lambda s: search_customers(s, CustomerFilters(phase="renewal"), None, 50),
     "customer", "ix_customer_phase_id"),
    ("customers by owner",
     lambda s: search_customers(s, CustomerFilters(owner="sam"), None, 50),
     "customer", "ix_customer_owner_id"),
    ("customers at risk",
     lambda s: search_customers(s, CustomerFilters(at_risk=True), None, 50),
     "customer", "ix_customer_at_risk_id"),
    ("open tasks", lambda s: list_tasks(s), "task", "ix_task_status_due_at_id"),
    ("a role's tasks", lambda s: list_tasks(s, role="rep"), "task",
     "ix_task_owner_role_status_due_at_id"),
    ("an assignee's tasks", lambda s: list_tasks(s, assignee="riley"), "task",
     "ix_task_assignee_status_due_at_id"),
    ("a rep's inbox", lambda s: task_inbox(s, "riley@team.test"), "task",
     "ix_task_assignee_status_due_at_id"),
    ("a rep's accounts",
     lambda s: search_customers(s, CustomerFilters(), None, 50, rep_view="riley@team.test"),
     "customer", "ix_customer_rep_id"),
    ("goal values", lambda s: latest_goal_values(s, "acme"), "signal",
     "ix_signal_customer_id_kind_observed_at"),
    ("latest assessment", lambda s: latest_assessment(s, "acme"), "assessment",
     "ix_assessment_customer_id_assessed_at_id"),
    ("timeline", lambda s: customer_overview(s, "acme"), "timeline",
     "ix_timeline_customer_id_at_id"),
    ("recent emails", lambda s: customer_overview(s, "acme"), "outbox",
     "ix_outbox_customer_id_created_at"),
]  # fmt: skip


def other_accounts_signals(engine: Engine) -> None:
    """Signals of many accounts, analysed. Two indexes serve a read of one account's
    signals of one kind in time order: by kind and time (the portfolio's, with the
    account as a filter) and by account, kind and time. On an empty table the planner
    prices both the same, and which one wins turns on the rows' declared width; with
    accounts to tell apart it takes the account's own, as it does in production."""
    add(engine, *(customer(f"other-{n}") for n in range(20)))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    signals = [
        SignalIn(
            customer_id=f"other-{n % 20}", kind=kind, value=1,
            observed_at=at + timedelta(hours=n), goal_key="g" if kind is SignalKind.goal else None,
        )
        for n in range(400)
        for kind in (SignalKind.nps, SignalKind.goal)
    ]  # fmt: skip
    record_signals(engine, signals)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE signal")


@pytest.mark.parametrize(("what", "call", "table", "index"), LISTS, ids=[x[0] for x in LISTS])
def test_lists_read_their_index_in_order(
    engine: Engine, what: str, call: Callable[[Session], Any], table: str, index: str
) -> None:
    add(engine, customer("acme"))
    if table == "signal":
        other_accounts_signals(engine)
    with statements(engine) as sent, Session(engine) as session:
        call(session)
    reads = [(s, p) for s, p in sent if f"FROM {table}" in s and "ORDER BY" in s]
    assert reads, f"{what}: no ordered read of {table} in {[s for s, _ in sent]}"
    plan = plan_of(engine, *reads[-1])
    assert index in plan and not sorts(plan), f"{what}:\n{reads[-1][0]}\n{plan}"
