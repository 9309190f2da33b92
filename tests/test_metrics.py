"""Portfolio and team metrics on hand-built records (the shared `engine` fixture: SQLite
and PostgreSQL), against numbers worked out by hand in the comments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db import metrics, team_metrics
from models.portfolio import PointFilters
from models.tables import (
    AssessmentRecord,
    Customer,
    GoalRecord,
    SignalRecord,
    SuccessPlanRecord,
    TaskRecord,
    TimelineEvent,
)

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=30)  # the default period: 2026-05-16 12:00


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


class Book:
    """Rows written straight into the tables, as the activities would have."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.n = 0

    def customer(
        self,
        cid: str,
        quadrant: str = "unknown",
        level: float | None = None,
        phase: str = "adopting",
        at_risk: bool = False,
        renews_in: float = 300,
    ) -> None:
        self.s.add(
            Customer(
                id=cid,
                company=cid.title(),
                contact_name="C",
                email=f"{cid}@x.test",
                plan_name="default",
                plan_version=1,
                phase=phase,
                term_start=ago(300),
                term_end=NOW + timedelta(days=renews_in),
                quadrant=quadrant,
                level=level,
                at_risk=at_risk,
                created_at=ago(200),
            )
        )
        self.s.flush()  # before the rows that refer to it (foreign keys are on)

    def assessment(
        self,
        cid: str,
        at: datetime,
        x: float | None,
        y: float | None,
        quadrant: str,
        level: float | None,
        **detail: Any,
    ) -> None:
        self.n += 1
        record = AssessmentRecord(
            customer_id=cid,
            key=f"a{self.n}",
            assessed_at=at,
            customer_score=x,
            company_score=y,
            quadrant=quadrant,
            level=level,
            detail=detail,
        )
        self.s.add(record)
        customer = self.s.get(Customer, cid)
        assert customer is not None
        customer.stand(record)

    def signal(self, cid: str, kind: str, value: float, at: datetime, goal: str | None = None):
        self.s.add(
            SignalRecord(customer_id=cid, kind=kind, value=value, observed_at=at, goal_key=goal)
        )

    def task(
        self,
        tid: str,
        cid: str,
        status: str,
        due: datetime,
        done: datetime | None = None,
        playbook: str | None = None,
    ) -> None:
        self.s.add(
            TaskRecord(
                id=tid,
                customer_id=cid,
                kind="playbook" if playbook else "review_call",
                title=tid,
                owner_role="manager",
                status=status,
                due_at=due,
                created_at=ago(60),
                completed_at=done,
                playbook=playbook,
            )
        )

    def churn(self, cid: str, at: datetime) -> None:
        self.s.add(
            TimelineEvent(
                customer_id=cid, key="t1:ended", at=at, kind="churned", message="Lifecycle ended"
            )
        )


@pytest.fixture
def book(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        b = Book(session)
        # a: neutral (0.3) before the period, happy_profitable (0.6) now: toward success.
        b.customer("a", "happy_profitable", 0.6, renews_in=60)
        b.assessment("a", ago(40), 0.2, 0.4, "neutral", 0.3)
        b.assessment("a", ago(5), 0.5, 0.7, "happy_profitable", 0.6)
        # b: happy_profitable (0.2) before, unhappy_profitable (-0.1) now: away.
        b.customer("b", "unhappy_profitable", -0.1, at_risk=True, renews_in=200)
        b.assessment("b", ago(40), 0.3, 0.1, "happy_profitable", 0.2)
        b.assessment("b", ago(5), -0.6, 0.4, "unhappy_profitable", -0.1)
        # c: first assessed in the period, neutral but highly profitable: the risk list.
        b.customer("c", "neutral", 0.425, at_risk=True, renews_in=30)
        b.assessment(
            "c",
            ago(3),
            0.05,
            0.8,
            "neutral",
            0.425,
            risks=["neutral_high_profit"],
            inputs={"revenue": 5000, "margin": 0.7},
        )
        # d: never assessed.
        b.customer("d", renews_in=10)
        # e: churned in the period; f: unchanged at 0.5; g: unknown before, scored now.
        b.customer("e", "unhappy_unprofitable", -0.5, phase="churned", renews_in=20)
        b.assessment("e", ago(8), -0.5, -0.5, "unhappy_unprofitable", -0.5)
        b.churn("e", ago(6))
        b.customer("f", "happy_profitable", 0.5, renews_in=100)
        b.assessment("f", ago(40), 0.5, 0.5, "happy_profitable", 0.5)
        b.assessment("f", ago(5), 0.4, 0.6, "happy_profitable", 0.5)
        b.s.get_one(Customer, "f").mrr = 800.0  # billed, no revenue signals
        b.customer("g", "happy_unprofitable", 0.1, renews_in=400)
        b.assessment("g", ago(40), None, 0.3, "unknown", None)
        b.assessment("g", ago(5), 0.4, -0.2, "happy_unprofitable", 0.1)
        # h: churned before the period: not active at its start.
        b.customer("h", "unknown", None, phase="churned")
        b.churn("h", ago(40))
        # Revenue in the period: c 5000, b 3000, a 1000 + 500; f's is older than the period.
        for cid, value, days in (
            ("c", 5000, 2),
            ("b", 3000, 2),
            ("a", 1000, 20),
            ("a", 500, 2),
            ("f", 9000, 45),
        ):
            b.signal(cid, "revenue", value, ago(days))
        # Survey answers in the period, and one NPS before it (excluded).
        for i, v in enumerate((10, 9, 9, 8, 6, 3)):
            b.signal("a", "nps", v, ago(1 + i))
        b.signal("a", "nps", 0, ago(35))
        for i, v in enumerate((5, 4, 2, 3)):
            b.signal("b", "csat", v, ago(1 + i))
        b.signal("b", "fcr", 0.8, ago(2))
        b.signal("c", "fcr", 0.6, ago(2))
        b.signal("b", "aht", 10, ago(2))
        b.signal("c", "aht", 14, ago(2))
        b.signal("b", "tickets", 30, ago(2))
        b.signal("c", "tickets", 12, ago(2))
        # Tasks: one open and overdue, one open not yet due, one done before the period,
        # one done in time and one late in the period.
        b.task("t1", "a", "open", ago(1))
        b.task("t2", "a", "open", NOW + timedelta(days=1))
        b.task("t3", "a", "done", ago(33), done=ago(34))
        b.task("t4", "b", "done", ago(5), done=ago(10))
        b.task("t5", "b", "done", ago(4), done=ago(3))
        # Playbooks done in the period, judged on the assessments of the 90 days after.
        b.task("p1", "b", "done", ago(18), done=ago(20), playbook="unhappy_profitable")
        b.task("p2", "a", "done", ago(20), done=ago(25), playbook="neutral_high_profit")
        b.task("p3", "g", "done", ago(20), done=ago(28), playbook="happy_unprofitable")
        b.task("p4", "f", "done", ago(20), done=ago(29), playbook="neutral_high_profit")
        session.commit()
        yield session


def test_quadrant_counts_exclude_churned(book: Session) -> None:
    counts = {q.quadrant: (q.customers, q.average_level) for q in metrics.standing(book, START)[0]}
    assert counts == {
        "happy_profitable": (2, 0.55),
        "unhappy_profitable": (1, -0.1),
        "happy_unprofitable": (1, 0.1),
        "unhappy_unprofitable": (0, None),
        "neutral": (1, 0.425),
        "unknown": (1, None),  # d; h is churned
    }


def test_movement_since_the_period_start(book: Session) -> None:
    moved = metrics.standing(book, START).movement
    assert (moved.toward_success, moved.away, moved.unchanged) == (1, 1, 1)  # a, b, f
    assert (moved.unscored, moved.no_previous) == (1, 2)  # g; c and d
    assert [(t.from_quadrant, t.to_quadrant, t.customers) for t in moved.transitions] == [
        ("happy_profitable", "unhappy_profitable", 1),
        ("neutral", "happy_profitable", 1),
        ("unknown", "happy_unprofitable", 1),
    ]


def test_movement_reaches_back_past_two_assessments_in_the_period(engine: Engine) -> None:
    """The customer row holds two assessments; a third within the period sends the
    lookup to the history, and one recorded late still lands in its place."""
    with Session(engine) as session:
        b = Book(session)
        b.customer("x", "unknown")
        b.assessment("x", ago(60), 0.3, 0.3, "neutral", 0.3)
        b.assessment("x", ago(40), 0.5, 0.5, "happy_profitable", 0.5)  # in force at START
        b.assessment("x", ago(2), -0.5, 0.5, "unhappy_profitable", -0.2)
        b.assessment("x", ago(20), 0.4, 0.6, "happy_profitable", 0.6)  # recorded late
        b.customer("y", "unknown")
        b.assessment("y", ago(20), 0.5, 0.5, "happy_profitable", 0.5)
        b.assessment("y", ago(10), 0.6, 0.6, "happy_profitable", 0.6)  # nothing before
        session.commit()
        x = session.get(Customer, "x")
        assert x is not None
        assert (x.quadrant, x.level, x.previous_quadrant, x.previous_level) == (
            "unhappy_profitable", -0.2, "happy_profitable", 0.6,
        )  # fmt: skip
        moved = metrics.standing(session, START).movement
        points = metrics.scatter_points(session, START)
    assert (moved.away, moved.no_previous, moved.toward_success) == (1, 1, 0)
    assert [(p.id, p.x, p.y, p.previous_x, p.previous_y) for p in points] == [
        ("x", -0.5, 0.5, 0.5, 0.5),
        ("y", 0.6, 0.6, None, None),
    ]
    assert [(t.from_quadrant, t.to_quadrant) for t in moved.transitions] == [
        ("happy_profitable", "unhappy_profitable")
    ]


def test_portfolio_numbers_risks_and_points(book: Session) -> None:
    view = metrics.portfolio(book, now=NOW)
    assert view.active_customers == 6
    assert view.renewals_due == 3  # d (10 days), c (30), a (60); e is churned, f is at 100
    assert view.overdue_tasks == 1  # t1
    assert [(r.id, r.revenue, r.margin) for r in view.risks] == [("c", 5000, 0.7)]
    # Most revenue first; f and g have none in the period and sort by id, f at its MRR.
    assert [(p.id, p.revenue) for p in view.points] == [
        ("c", 5000),
        ("b", 3000),
        ("a", 1500),
        ("f", 800),
        ("g", 0),
    ]
    a = next(p for p in view.points if p.id == "a")
    assert (a.x, a.y, a.previous_x, a.previous_y) == (0.5, 0.7, 0.2, 0.4)
    g = next(p for p in view.points if p.id == "g")
    assert (g.previous_x, g.previous_y) == (None, None)  # unscored before: no trail
    assert view.points_total == 5


def test_renewals_due_within_the_asked_days_beside_the_90_day_forecast(book: Session) -> None:
    """Counted and forecast in one read of the longer window, each over its own days."""
    soon = metrics.portfolio(book, now=NOW, renewal_days=30)
    later = metrics.portfolio(book, now=NOW, renewal_days=120)
    assert (soon.renewals_due, later.renewals_due) == (2, 4)  # d, c; and a, f
    assert soon.renewal_forecast == later.renewal_forecast
    assert soon.renewal_forecast.accounts == 3  # d, c, a


def test_points_are_filtered_and_capped(book: Session) -> None:
    happy = PointFilters(quadrant="happy_profitable")
    assert [p.id for p in metrics.scatter_points(book, START, happy)] == ["a", "f"]
    assert metrics.standing(book, START, happy).points_total == 2
    risky = PointFilters(at_risk=True)
    assert [p.id for p in metrics.scatter_points(book, START, risky)] == ["c", "b"]
    assert metrics.standing(book, START, risky).points_total == 2
    calm = PointFilters(phase="adopting", at_risk=False)
    assert [p.id for p in metrics.scatter_points(book, START, calm)] == ["a", "f", "g"]
    assert metrics.standing(book, START, calm).points_total == 3
    assert [p.id for p in metrics.scatter_points(book, START, limit=2)] == ["c", "b"]
    assert metrics.standing(book, START).points_total == 5


def test_team_metrics_over_the_period(book: Session) -> None:
    team = team_metrics.team_metrics(book, START, NOW)
    # Eight customers existed at the start, h had churned: 7 active; e churned since.
    assert (team.active_at_start, team.churned) == (7, 1)
    assert team.churn_rate == round(1 / 7, 4) and team.retention_rate == round(6 / 7, 4)
    # NPS 10 9 9 8 6 3: 3 promoters, 2 detractors of 6 answers: (3 - 2) / 6 = 16.7.
    assert (team.nps, team.nps_responses) == (16.7, 6)
    assert (team.csat_mean, team.csat_satisfied_rate, team.csat_responses) == (3.5, 0.5, 4)
    assert (team.fcr_mean, team.aht_mean, team.tickets_closed) == (0.7, 12, 42)
    # t4, t5 and four playbooks done in the period; t4 and all playbooks before their due.
    assert (team.tasks_closed, team.tasks_on_time) == (6, 5)
    assert team.on_time_rate == round(5 / 6, 4)
    effects = {p.playbook: (p.accounts, p.improved, p.rate) for p in team.playbooks}
    assert effects == {
        "happy_unprofitable": (1, 0, 0.0),  # g: no level before to compare, not happy
        "neutral_high_profit": (2, 2, 1.0),  # a rose 0.3 -> 0.6; f reached happy_profitable
        "unhappy_profitable": (1, 0, 0.0),  # b fell 0.2 -> -0.1
    }


def test_playbook_effect_counts_only_the_90_days_after(engine: Engine) -> None:
    with Session(engine) as session:
        b = Book(session)
        b.customer("late", "neutral", 0.0)
        b.assessment("late", ago(20), 0.0, 0.0, "neutral", 0.0)
        b.assessment("late", ago(10) + timedelta(days=91), 0.9, 0.9, "happy_profitable", 0.9)
        b.task("p", "late", "done", ago(10), done=ago(10), playbook="neutral_high_profit")
        b.customer("soon", "neutral", 0.0)
        b.assessment("soon", ago(20), 0.0, 0.0, "neutral", 0.0)
        b.assessment("soon", ago(10) + timedelta(days=89), 0.3, 0.3, "happy_profitable", 0.3)
        b.task("q", "soon", "done", ago(10), done=ago(10), playbook="neutral_high_profit")
        session.commit()
        [effect] = team_metrics.playbook_effectiveness(session, START, NOW)
    assert (effect.accounts, effect.improved, effect.rate) == (2, 1, 0.5)


def test_team_report_has_six_calendar_months(book: Session) -> None:
    report = team_metrics.team_report(book, now=NOW)
    assert [m.period_start.date() for m in report.monthly] == [
        date(2026, m, 1) for m in range(1, 7)
    ]
    assert report.monthly[-1].period_end == NOW
    may, june = report.monthly[-2:]
    # The period's six answers fall on 9-14 June; the excluded one on 11 May.
    assert (may.nps_responses, june.nps_responses) == (1, 6)
    assert report.current.nps == 16.7 and report.current.playbooks


def test_upcoming_renewals_with_plan_progress(book: Session) -> None:
    b = Book(book)
    for version, source, goals in ((1, "manager", 2), (2, "customer", 0), (3, "manager", 1)):
        plan = SuccessPlanRecord(
            customer_id="a",
            version=version,
            author="m",
            source=source,
            intended_use="u",
            success_definition="d",
            created_at=ago(100 - version),
        )
        book.add(plan)
        book.flush()
        for key, base, target in (("reps", 0, 20), ("hours", 100, 50))[:goals]:
            book.add(
                GoalRecord(
                    plan_id=plan.id,
                    customer_id="a",
                    key=key,
                    metric=key,
                    baseline=base,
                    target=target,
                    direction="increase" if target > base else "decrease",
                    target_date=date(2027, 1, 1),
                )
            )
    b.signal("a", "goal", 2, ago(30), goal="reps")
    b.signal("a", "goal", 5, ago(3), goal="reps")
    b.signal("a", "goal", 75, ago(3), goal="hours")
    book.commit()
    rows = team_metrics.upcoming_renewals(book, now=NOW, days=180)
    assert [r.id for r in rows] == ["d", "c", "a", "f"]  # by term end; b is 200 days out
    a = rows[2]
    # Only the latest manager version (v3: reps 0 -> 20) counts: 5 of 20 is 0.25.
    assert (a.plan_progress, a.goals, a.quadrant) == (0.25, 1, "happy_profitable")
    assert rows[0].plan_progress is None and rows[0].goals == 0
