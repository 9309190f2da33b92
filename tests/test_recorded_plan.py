"""The latest success plan the manager recorded, read in one statement with its goals
and when the customer's first plan was recorded (goal progress is paced from then)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import session_scope
from db.queries import latest_recorded_plan
from models.tables import GoalRecord, SuccessPlanRecord
from tests.test_latest_mrr import add_acme

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def add_plan(session: Session, version: int, source: str, *goals: str) -> None:
    plan = SuccessPlanRecord(
        customer_id="acme", version=version, author="sam", source=source,
        intended_use="pipeline", success_definition=f"v{version}",
        created_at=T0 + timedelta(days=10 * version),
    )  # fmt: skip
    session.add(plan)
    session.flush()
    assert plan.id is not None
    for key in goals:
        session.add(
            GoalRecord(
                plan_id=plan.id, customer_id="acme", key=key, metric=key, baseline=0,
                target=10, direction="increase", target_date=date(2026, 12, 1),
            )
        )  # fmt: skip


def test_the_latest_manager_plan_with_its_goals_and_the_first_plans_date(engine: Engine) -> None:
    add_acme(engine)
    with Session(engine) as session:
        assert latest_recorded_plan(session, "acme") is None

    with session_scope(engine) as session:
        add_plan(session, 1, "customer")  # the customer's own words came first
        add_plan(session, 2, "manager", "reps", "deals")
        add_plan(session, 3, "manager", "calls", "reps")
        add_plan(session, 4, "customer")
    with Session(engine) as session:
        plan = latest_recorded_plan(session, "acme")
        assert plan is not None
        assert plan.record.version == 3 and plan.record.success_definition == "v3"
        assert [g.key for g in plan.goals] == ["calls", "reps"]  # in the order recorded
        assert plan.started == T0 + timedelta(days=10)
        assert [g.key for g in plan.success_plan().goals] == ["calls", "reps"]

    with session_scope(engine) as session:
        add_plan(session, 5, "manager")  # a revision without goals
    with Session(engine) as session:
        plan = latest_recorded_plan(session, "acme")
        assert plan is not None and plan.record.version == 5 and plan.goals == []
        assert plan.started == T0 + timedelta(days=10)
