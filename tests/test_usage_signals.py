"""Usage per metric over a period: what a signal may say, and that it is stored whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from activities.assessment import AssessmentActivities
from activities.contracts import AssessmentRequest
from db.ingest import CLOCK_SKEW, FutureSignal, record_signals
from models.plan import ScoringSettings
from models.signals import MAX_MAGNITUDE, Observation, SignalIn, SignalKind, observation
from models.tables import AssessmentRecord, Customer, SignalRecord

END = datetime(2026, 3, 1, tzinfo=UTC)
SETTINGS = ScoringSettings()


def usage(**fields: object) -> SignalIn:
    values: dict[str, object] = {
        "customer_id": "acme",
        "kind": "usage",
        "value": 280,
        "observed_at": END,
    }
    return SignalIn.model_validate(values | fields)


def test_a_usage_count_over_a_period_is_a_daily_rate() -> None:
    february = usage(metric="reports_shared", period_start=datetime(2026, 2, 1, tzinfo=UTC))
    assert february.metric_name == "reports_shared"
    assert february.period_days == pytest.approx(28)


def test_usage_without_a_metric_is_the_metric_usage_and_a_level() -> None:
    single = usage()
    assert single.metric_name == "usage"
    assert single.period_days is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"metric": "Reports Shared"}, "metric", "'Reports Shared' is not a metric name"),
        ({"kind": "nps", "value": 9, "metric": "x"}, "metric", "only goes with kind 'usage'"),
        ({"period_start": END}, "period_start", "period_start must be before observed_at"),
        (
            {"period_start": END + timedelta(days=1)},
            "period_start",
            "period_start must be before observed_at",
        ),
        (
            {"kind": "nps", "value": 9, "period_start": END - timedelta(days=30)},
            "period_start",
            "period_start only goes with an amount over a period",
        ),
        ({"kind": "seats", "value": -1}, "value", "seats must be at least 0"),
        ({"kind": "usage", "value": -5}, "value", "usage must be at least 0, got -5"),
        ({"goal_key": "active_reps"}, "goal_key", "goal_key only goes with kind 'goal'"),
        ({"kind": "csat", "value": 4, "contact": "a@b.test", "period_start": None}, None, None),
        ({"contact": "a@b.test"}, "contact", "contact only goes with a survey answer"),
    ],
)
def test_bad_usage_signals_are_refused_naming_the_field(
    fields: dict[str, object], field: str | None, message: str | None
) -> None:
    """A check that reads two fields (the kind and the value, the period's two ends)
    names the field at fault, not the whole signal."""
    if field is None:  # the same fields, rightly combined
        usage(**fields)
        return
    with pytest.raises(ValidationError) as refused:
        usage(**fields)
    [problem] = refused.value.errors()
    assert problem["loc"] == (field,)
    assert message in problem["msg"]


def customer_row(cid: str) -> Customer:
    return Customer(
        id=cid,
        company=f"Company {cid}",
        contact_name="Ada",
        email=f"ada@{cid}.test",
        plan_name="default",
        plan_version=1,
        phase="adopting",
        term_start=END - timedelta(days=100),
        term_end=END + timedelta(days=265),
    )


def test_metric_and_period_are_stored_and_read_back(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(customer_row("acme"))
        session.commit()
    start = datetime(2026, 2, 1, tzinfo=UTC)
    signals = [
        usage(metric="reports_shared", period_start=start, client_id="feb"),
        usage(value=12, client_id="single"),
    ]
    assert record_signals(engine, signals) == 2
    with Session(engine) as session:
        rows = session.exec(select(SignalRecord).order_by(SignalRecord.id)).all()
        read = [observation(r) for r in rows]
    assert read == [
        Observation(
            kind=SignalKind.usage,
            value=280,
            observed_at=END,
            metric="reports_shared",
            period_start=start,
            client_id="feb",
        ),
        Observation(kind=SignalKind.usage, value=12, observed_at=END, client_id="single"),
    ]


def test_the_assessment_reads_peers_and_stores_the_churn_risk(engine: Engine) -> None:
    """Six accounts on the plan report daily usage; the assessment of one ranks it among
    them, and its churn risk lands on the assessment and on the customer row."""
    with Session(engine) as session:
        for n in range(6):
            session.add(customer_row(f"c{n}"))
        session.commit()
    signals = [
        SignalIn(
            customer_id=f"c{n}",
            kind=SignalKind.usage,
            metric="reports_shared",
            value=float(n + 1),
            period_start=END - timedelta(days=d + 1),
            observed_at=END - timedelta(days=d),
        )
        for n in range(6)
        for d in range(28)
    ]
    record_signals(engine, signals)
    request = AssessmentRequest(customer_id="c4", key="check_in-1", as_of=END, scoring=SETTINGS)
    assessment = AssessmentActivities(engine).assess_account(request)
    # c4 uses 5 a day among 1..6: 4 below, itself equal -> 4.5 / 6 = 0.75 -> +0.5.
    assert assessment.inputs["usage_percentile"] == pytest.approx(0.75)
    assert assessment.components["usage_peers"] == pytest.approx(0.5)
    assert assessment.churn_risk is not None
    with Session(engine) as session:
        stored = session.exec(select(AssessmentRecord)).one()
        row = session.get(Customer, "c4")
        assert row is not None
        assert stored.churn_risk == row.churn_risk == assessment.churn_risk
        assert row.at_risk == assessment.at_risk


def test_the_assessment_reads_seats_and_mrr_recorded_before_its_window(engine: Engine) -> None:
    """Seats and MRR recorded once, at the contract's start 200 days back (and an older
    MRR before them): the assessment still reads the latest of each, so utilisation and
    the company axis are measured."""
    with Session(engine) as session:
        session.add(customer_row("c1"))
        session.commit()
    standing = [
        SignalIn(customer_id="c1", kind=kind, value=value, observed_at=END - timedelta(days=ago))
        for kind, value, ago in (("mrr", 700.0, 300), ("mrr", 1000.0, 200), ("seats", 40.0, 200))
    ]
    active = [
        usage(customer_id="c1", metric="active_users", value=20.0,
              period_start=END - timedelta(days=d + 1), observed_at=END - timedelta(days=d))
        for d in range(28)
    ]  # fmt: skip
    record_signals(engine, [*standing, *active])
    request = AssessmentRequest(customer_id="c1", key="check_in-1", as_of=END, scoring=SETTINGS)
    assessment = AssessmentActivities(engine).assess_account(request)
    assert assessment.inputs["utilisation"] == pytest.approx(20 / 40)
    assert assessment.inputs["revenue"] == pytest.approx(1000)
    assert assessment.company_score is not None


ZONE_NEEDED = "a time zone is required: end the time with Z (UTC) or an offset"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"observed_at": "2026-12-01T00:00:00"}, "observed_at", ZONE_NEEDED),
        ({"observed_at": "2026-12-01"}, "observed_at", ZONE_NEEDED),
        ({"observed_at": datetime(2026, 3, 1)}, "observed_at", ZONE_NEEDED),
        ({"period_start": "2026-02-01T00:00:00"}, "period_start", ZONE_NEEDED),
        ({"period_start": datetime(2026, 2, 1)}, "period_start", ZONE_NEEDED),
        ({"kind": "mrr", "value": 1e308}, "value", "less than or equal to 1000000000000"),
        ({"kind": "tickets", "value": -1e13}, "value", "greater than or equal to"),
        ({"kind": "mrr", "value": float("inf")}, "value", "a finite number"),
        ({"value": float("nan")}, "value", "a finite number"),
        ({"kind": "goal", "goal_key": "k", "value": float("-inf")}, "value", "a finite number"),
        ({"observed_at": "0001-01-01T00:00:00+14:00"}, "observed_at", "from 1970 to 2999, got 1"),
        ({"period_start": "1969-12-01T00:00:00Z"}, "period_start", "from 1970 to 2999, got 1969"),
        ({"periodStart": "2026-02-01T00:00:00Z"}, "periodStart", "Extra inputs are not permitted"),
        ({"clientId": "inv-77"}, "clientId", "Extra inputs are not permitted"),
    ],
)
def test_a_time_without_a_zone_and_an_absurd_value_are_refused_naming_the_field(
    fields: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        usage(**fields)
    (problem,) = refused.value.errors()
    assert problem["loc"] == (field,) and message in problem["msg"]


def test_a_zoned_time_and_the_largest_sane_value_are_taken() -> None:
    taken = usage(kind="mrr", value=MAX_MAGNITUDE, observed_at="2026-12-01T00:00:00+02:00")
    assert taken.observed_at == datetime(2026, 11, 30, 22, tzinfo=UTC)


def test_a_future_signal_refuses_the_batch_only_where_a_clock_is_given(engine: Engine) -> None:
    """The outside world's entry points pass their clock; a simulation passes none and
    records at its own simulated time, which may be ahead of the wall clock."""
    with Session(engine) as session:
        session.add(customer_row("acme"))
        session.commit()
    now = datetime.now(UTC)
    batch = [
        usage(kind="mrr", value=900, observed_at=now, client_id="now"),
        usage(kind="mrr", value=99999, observed_at=now + CLOCK_SKEW + timedelta(minutes=1)),
    ]
    with pytest.raises(FutureSignal, match=r"observed_at: .* is in the future") as refused:
        record_signals(engine, batch, received_at=now)
    assert refused.value.index == 1
    with Session(engine) as session:
        assert session.exec(select(SignalRecord)).all() == []  # nor the batch's first
        assert session.get(Customer, "acme").mrr is None  # type: ignore[union-attr]
    # A sender's clock somewhat fast is within the allowance.
    skewed = usage(kind="mrr", value=950, observed_at=now + CLOCK_SKEW - timedelta(minutes=1))
    assert record_signals(engine, [batch[0], skewed], received_at=now) == 2
    # Without a clock (a simulation at its own time), a later time is taken as it is.
    assert record_signals(engine, [usage(observed_at=now + timedelta(days=400))]) == 1
