"""The success quadrant (DOMAIN.md section 3): models.scoring.assess and goal_progress.

Expected values are worked out by hand from the formulas in models/scoring.py, with the
default ScoringSettings unless a test says otherwise:

    weights: nps .25, csat .15, goal_progress .35, usage_trend .15, support .10
    nps       -> clip((mean - 7) / 3)
    csat      -> clip((mean - 3) / 2)
    goal      -> clip(0.5 + 2 * mean(progress - expected progress by date))
    usage     -> clip(((latest - mean(earlier)) / mean(earlier)) / 0.5)
    support   -> clip((fcr - 0.7) / 0.3)
    company   -> clip(0.5 * margin / target_margin), target_margin .4
    level     = (customer + company) / 2
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.plan import CustomerWeights, ScoringSettings
from models.scoring import (
    Assessment,
    PreviousAssessment,
    Quadrant,
    Risk,
    assess,
    goal_progress,
)
from models.signals import Observation, SignalKind
from models.success_plan import Direction, Goal, SuccessPlan

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)  # midnight, so goal target dates line up exactly
SETTINGS = ScoringSettings()
TOL = 1e-4
# The components that come from usage, seats, MRR and tickets: missing in these tests.
ACTIVITY = ["usage_peers", "breadth", "utilisation", "revenue_movement", "support_load"]


def obs(kind: str, value: float, days_ago: float = 1, goal_key: str | None = None) -> Observation:
    return Observation(
        kind=SignalKind(kind),
        value=value,
        observed_at=AS_OF - timedelta(days=days_ago),
        goal_key=goal_key,
    )


def money(revenue: float, cost: float, days_ago: float = 10) -> list[Observation]:
    return [obs("revenue", revenue, days_ago), obs("cost", cost, days_ago)]


def goal(
    key: str = "active_reps",
    baseline: float = 2,
    target: float = 12,
    direction: Direction = Direction.increase,
    target_date: date | None = None,
) -> Goal:
    return Goal(
        key=key,
        metric=f"{key} measured weekly",
        baseline=baseline,
        target=target,
        direction=direction,
        target_date=target_date or (AS_OF + timedelta(days=100)).date(),
    )


def plan_of(*goals: Goal) -> SuccessPlan:
    return SuccessPlan(
        intended_use="Track every deal our reps work",
        success_definition="Every rep logs their calls in the CRM",
        goals=list(goals),
    )


# Started 100 days before AS_OF with target dates 100 days after it: expected progress 0.5.
STARTED = AS_OF - timedelta(days=100)


def check_level(a: Assessment) -> None:
    assert a.customer_score is not None and a.company_score is not None
    assert a.level == pytest.approx((a.customer_score + a.company_score) / 2, abs=TOL)


# --------------------------------------------------------------------------- quadrants


def test_happy_profitable_from_every_signal() -> None:
    plan = plan_of(goal())
    observations = [
        obs("nps", 9, 20),
        obs("nps", 10, 5),  # mean 9.5 -> (9.5 - 7) / 3 = 0.8333
        obs("csat", 5, 3),  # (5 - 3) / 2 = 1.0
        obs("usage", 100, 60),
        obs("usage", 100, 30),
        obs("usage", 130, 2),  # (130 - 100) / 100 = 0.3 -> 0.3 / 0.5 = 0.6
        obs("fcr", 0.85, 7),  # (0.85 - 0.7) / 0.3 = 0.5
        obs("goal", 8, 4, goal_key="active_reps"),  # (8 - 2) / 10 = 0.6 vs 0.5 -> 0.7
        *money(10_000, 5_000),  # margin 0.5 -> 0.5 * 0.5 / 0.4 = 0.625
    ]
    a = assess(observations, SETTINGS, AS_OF, success_plan=plan, plan_started=STARTED)

    expected_customer = (0.25 * 2.5 / 3 + 0.15 * 1.0 + 0.35 * 0.7 + 0.15 * 0.6 + 0.10 * 0.5) / 1.0
    assert a.quadrant is Quadrant.happy_profitable
    assert a.customer_score == pytest.approx(expected_customer, abs=TOL)  # 0.7433
    assert a.company_score == pytest.approx(0.625, abs=TOL)
    assert a.level == pytest.approx((expected_customer + 0.625) / 2, abs=TOL)
    check_level(a)
    assert a.components == pytest.approx(
        {
            "nps": 0.8333,
            "csat": 1.0,
            "goal_progress": 0.7,
            "usage_trend": 0.6,
            "support": 0.5,
            "margin": 0.625,
        },
        abs=TOL,
    )
    assert a.inputs["nps"] == pytest.approx(9.5)
    assert a.inputs["usage_change"] == pytest.approx(0.3)
    assert a.inputs["goal_progress_vs_expected"] == pytest.approx(0.1)
    assert a.inputs["margin"] == pytest.approx(0.5)
    assert a.missing == ACTIVITY
    assert a.goal_progress == {"active_reps": pytest.approx(0.6)}
    # High margin but clearly happy: not the neutral risk.
    assert a.risks == []
    assert a.assessed_at == AS_OF
    assert a.trend is None and a.previous_quadrant is None and not a.moved


def test_unhappy_profitable_is_a_flight_risk() -> None:
    observations = [
        obs("nps", 3),  # (3 - 7) / 3 = -1.333 -> clipped to -1
        obs("csat", 2),  # (2 - 3) / 2 = -0.5
        obs("fcr", 0.55),  # (0.55 - 0.7) / 0.3 = -0.5
        *money(10_000, 7_000),  # margin 0.3 -> 0.375
    ]
    a = assess(observations, SETTINGS, AS_OF)

    expected_customer = (0.25 * -1 + 0.15 * -0.5 + 0.10 * -0.5) / (0.25 + 0.15 + 0.10)
    assert a.quadrant is Quadrant.unhappy_profitable
    assert a.customer_score == pytest.approx(expected_customer, abs=TOL)  # -0.75
    assert a.company_score == pytest.approx(0.375, abs=TOL)
    assert a.components["nps"] == -1.0  # clipped, not -1.333
    assert a.level == pytest.approx((-0.75 + 0.375) / 2, abs=TOL)
    assert a.missing == ["goal_progress", "usage_trend", *ACTIVITY]


def test_happy_unprofitable_needs_service_or_pricing_review() -> None:
    observations = [
        obs("nps", 10),  # 1.0
        obs("csat", 4),  # 0.5
        *money(10_000, 12_000),  # margin -0.2 -> 0.5 * -0.2 / 0.4 = -0.25
    ]
    a = assess(observations, SETTINGS, AS_OF)

    expected_customer = (0.25 * 1.0 + 0.15 * 0.5) / 0.40  # 0.8125
    assert a.quadrant is Quadrant.happy_unprofitable
    assert a.customer_score == pytest.approx(expected_customer, abs=TOL)
    assert a.company_score == pytest.approx(-0.25, abs=TOL)
    assert a.inputs["margin"] == pytest.approx(-0.2)
    assert a.level == pytest.approx((0.8125 - 0.25) / 2, abs=TOL)


def test_unhappy_unprofitable_from_falling_usage_and_a_stalled_goal() -> None:
    response = goal("response_hours", baseline=48, target=24, direction=Direction.decrease)
    observations = [
        obs("nps", 5),  # (5 - 7) / 3 = -0.6667
        obs("usage", 200, 40),
        obs("usage", 100, 2),  # (100 - 200) / 200 = -0.5 -> -1.0
        obs("goal", 48, 3, goal_key="response_hours"),  # progress 0 vs 0.5 -> 0.5 - 1 = -0.5
        *money(5_000, 6_000),  # margin -0.2 -> -0.25
    ]
    a = assess(observations, SETTINGS, AS_OF, success_plan=plan_of(response), plan_started=STARTED)

    expected_customer = (0.25 * (-2 / 3) + 0.15 * -1.0 + 0.35 * -0.5) / (0.25 + 0.15 + 0.35)
    assert a.quadrant is Quadrant.unhappy_unprofitable
    assert a.customer_score == pytest.approx(expected_customer, abs=TOL)  # -0.6556
    assert a.company_score == pytest.approx(-0.25, abs=TOL)
    assert a.components["usage_trend"] == pytest.approx(-1.0)
    assert a.components["goal_progress"] == pytest.approx(-0.5)
    assert a.level == pytest.approx((expected_customer - 0.25) / 2, abs=TOL)
    check_level(a)


def test_zero_revenue_scores_company_minus_one() -> None:
    a = assess([obs("nps", 10), obs("csat", 5), *money(0, 500)], SETTINGS, AS_OF)
    assert a.company_score == -1.0
    assert a.quadrant is Quadrant.happy_unprofitable


def test_company_score_is_clipped_at_one() -> None:
    # target margin 0.2: margin 0.9 -> 0.5 * 0.9 / 0.2 = 2.25 -> clipped to 1.
    settings = ScoringSettings(target_margin=0.2)
    a = assess([obs("nps", 10), obs("csat", 5), *money(10_000, 1_000)], settings, AS_OF)
    assert a.company_score == 1.0


# --------------------------------------------------------------------------- neutral


def test_customer_inside_neutral_band_is_neutral() -> None:
    # nps 7 -> 0; csat 3.1 -> 0.05; customer = 0.15 * 0.05 / 0.40 = 0.01875
    a = assess([obs("nps", 7), obs("csat", 3.1), *money(10_000, 7_000)], SETTINGS, AS_OF)
    assert a.customer_score == pytest.approx(0.01875, abs=TOL)
    assert a.company_score == pytest.approx(0.375, abs=TOL)
    assert a.quadrant is Quadrant.neutral
    # Still a level on the diagonal, and not the high-profit risk (0.375 < 0.6).
    assert a.level == pytest.approx((0.01875 + 0.375) / 2, abs=TOL)
    assert a.risks == []


def test_company_inside_neutral_band_is_neutral() -> None:
    # margin 0.05 -> 0.5 * 0.05 / 0.4 = 0.0625 < 0.1
    a = assess([obs("nps", 10), obs("csat", 5), *money(10_000, 9_500)], SETTINGS, AS_OF)
    assert a.customer_score == pytest.approx(1.0)
    assert a.company_score == pytest.approx(0.0625, abs=TOL)
    assert a.quadrant is Quadrant.neutral


@pytest.mark.parametrize(
    ("nps", "expected_quadrant"),
    [
        # band 0.3; csat 3 -> 0. customer = 0.25 * nps_component / 0.40
        (7.3, Quadrant.neutral),  # nps comp 0.1 -> customer 0.0625
        (6.7, Quadrant.neutral),  # -0.0625
        (7.45, Quadrant.neutral),  # 0.15 -> 0.09375
        (8.8, Quadrant.happy_profitable),  # 0.6 -> 0.375
        (5.2, Quadrant.unhappy_profitable),  # -0.6 -> -0.375
    ],
)
def test_neutral_band_is_both_sides_of_zero(nps: float, expected_quadrant: Quadrant) -> None:
    settings = ScoringSettings(neutral_band=0.3)
    a = assess([obs("nps", nps), obs("csat", 3), *money(10_000, 5_000)], settings, AS_OF)
    assert a.customer_score == pytest.approx(0.25 * ((nps - 7) / 3) / 0.40, abs=TOL)
    assert a.quadrant is expected_quadrant


def test_neutral_customer_with_high_margin_is_a_business_risk() -> None:
    # customer 0 (nps 7, csat 3); margin 0.7 -> 0.875 >= high_profit 0.6
    a = assess([obs("nps", 7), obs("csat", 3), *money(10_000, 3_000)], SETTINGS, AS_OF)
    assert a.customer_score == pytest.approx(0.0)
    assert a.company_score == pytest.approx(0.875, abs=TOL)
    assert a.quadrant is Quadrant.neutral
    assert a.risks == [Risk.neutral_high_profit]


def test_neutral_customer_with_ordinary_margin_is_no_risk() -> None:
    # margin 0.4 -> 0.5, below high_profit 0.6
    a = assess([obs("nps", 7), obs("csat", 3), *money(10_000, 6_000)], SETTINGS, AS_OF)
    assert a.quadrant is Quadrant.neutral
    assert a.risks == []


def test_high_profit_threshold_comes_from_settings() -> None:
    settings = ScoringSettings(high_profit=0.5)
    a = assess([obs("nps", 7), obs("csat", 3), *money(10_000, 6_000)], settings, AS_OF)
    assert a.company_score == pytest.approx(0.5)
    assert a.risks == [Risk.neutral_high_profit]


# --------------------------------------------------------------------------- unknown


def test_too_few_customer_signals_is_unknown() -> None:
    settings = ScoringSettings(min_customer_signals=2)
    a = assess([obs("nps", 10), *money(10_000, 5_000)], settings, AS_OF)
    assert a.quadrant is Quadrant.unknown
    assert a.customer_score is None
    assert a.level is None
    # The component is still reported; the company side is still scored.
    assert a.components["nps"] == pytest.approx(1.0)
    assert a.company_score == pytest.approx(0.625)
    assert a.risks == []


def test_a_single_usage_figure_is_not_a_trend() -> None:
    a = assess([obs("nps", 10), obs("usage", 50), *money(10_000, 5_000)], SETTINGS, AS_OF)
    assert "usage_trend" not in a.components
    assert "usage_trend" in a.missing
    # One customer-side input is enough by default: the customer axis is nps alone.
    assert a.customer_score == pytest.approx(1.0)


def test_one_customer_side_input_is_enough_by_default() -> None:
    a = assess([obs("nps", 10), *money(10_000, 5_000)], SETTINGS, AS_OF)
    assert a.customer_score == pytest.approx(1.0)
    assert a.quadrant is Quadrant.happy_profitable


def test_min_customer_signals_comes_from_settings() -> None:
    settings = ScoringSettings(min_customer_signals=1)
    a = assess([obs("nps", 10), *money(10_000, 5_000)], settings, AS_OF)
    assert a.customer_score == pytest.approx(1.0)
    assert a.quadrant is Quadrant.happy_profitable


@pytest.mark.parametrize(
    "money_obs",
    [
        [],
        [obs("cost", 5_000)],
    ],
    ids=["no-money", "cost-only"],
)
def test_no_revenue_or_cost_is_unknown(money_obs: list[Observation]) -> None:
    a = assess([obs("nps", 10), obs("csat", 5), *money_obs], SETTINGS, AS_OF)
    assert a.quadrant is Quadrant.unknown
    assert a.company_score is None
    assert a.level is None
    assert "margin" in a.missing
    assert "margin" not in a.components
    assert a.customer_score == pytest.approx(1.0)


def test_no_signals_at_all_is_unknown() -> None:
    a = assess([], SETTINGS, AS_OF)
    assert a.quadrant is Quadrant.unknown
    assert a.customer_score is None and a.company_score is None and a.level is None
    assert a.missing == [
        "nps",
        "csat",
        "goal_progress",
        "usage_trend",
        "support",
        *ACTIVITY,
        "margin",
    ]
    assert a.churn_risk is None


# --------------------------------------------------------------------------- weights


def test_missing_signals_renormalise_the_weights() -> None:
    # nps 9 -> 2/3; csat 4 -> 0.5; only their weights (0.25 + 0.15) count.
    a = assess([obs("nps", 9), obs("csat", 4), *money(10_000, 5_000)], SETTINGS, AS_OF)
    expected = (0.25 * (2 / 3) + 0.15 * 0.5) / (0.25 + 0.15)  # 0.6042
    assert a.customer_score == pytest.approx(expected, abs=TOL)
    # Not divided by the full weight sum of 1.0:
    assert a.customer_score != pytest.approx(0.25 * (2 / 3) + 0.15 * 0.5, abs=TOL)
    assert a.missing == ["goal_progress", "usage_trend", "support", *ACTIVITY]


def test_zero_weight_components_do_not_count() -> None:
    settings = ScoringSettings(weights=CustomerWeights(csat=0))
    # nps 10 -> 1; csat 1 -> -1 but weight 0; fcr 0.7 -> 0.
    a = assess(
        [obs("nps", 10), obs("csat", 1), obs("fcr", 0.7), *money(10_000, 5_000)],
        settings,
        AS_OF,
    )
    assert a.customer_score == pytest.approx((0.25 * 1 + 0.10 * 0) / (0.25 + 0.10), abs=TOL)
    assert "csat" not in a.missing  # a zero weight is not "missing"
    assert a.missing == ["goal_progress", "usage_trend", *ACTIVITY]


def test_zero_weight_components_do_not_count_towards_the_minimum() -> None:
    settings = ScoringSettings(weights=CustomerWeights(csat=0), min_customer_signals=2)
    a = assess([obs("nps", 10), obs("csat", 5), *money(10_000, 5_000)], settings, AS_OF)
    assert a.customer_score is None
    assert a.quadrant is Quadrant.unknown


# --------------------------------------------------------------------------- window


def test_signals_outside_the_window_are_ignored() -> None:
    observations = [
        obs("nps", 9, 10),
        obs("csat", 4, 10),
        obs("nps", 0, 91),  # older than window_days
        obs("nps", 0, 90),  # exactly window_days old: outside (since < observed_at)
        obs("csat", 1, -1),  # after as_of
        obs("fcr", 0.1, 120),  # old: support stays missing
        *money(10_000, 5_000, 10),
        obs("revenue", 50_000, 100),  # old revenue must not inflate the margin
        obs("cost", 20_000, -2),  # future cost must not count
    ]
    a = assess(observations, SETTINGS, AS_OF)
    assert a.inputs["nps"] == pytest.approx(9)
    assert a.inputs["csat"] == pytest.approx(4)
    # Per month: without periods, the sums over the 90-day window, a third.
    assert a.inputs["revenue"] == pytest.approx(10_000 / 3)
    assert a.inputs["cost"] == pytest.approx(5_000 / 3)
    assert "support" in a.missing
    assert a.customer_score == pytest.approx((0.25 * (2 / 3) + 0.15 * 0.5) / 0.40, abs=TOL)
    assert a.company_score == pytest.approx(0.625)


def test_signal_at_as_of_is_inside_the_window() -> None:
    a = assess([obs("nps", 10, 0), obs("csat", 5, 0), *money(1, 0, 0)], SETTINGS, AS_OF)
    assert a.customer_score == pytest.approx(1.0)


def test_window_days_comes_from_settings() -> None:
    settings = ScoringSettings(window_days=30)
    a = assess(
        [obs("nps", 10, 10), obs("nps", 0, 40), obs("csat", 5, 10), *money(10_000, 5_000)],
        settings,
        AS_OF,
    )
    assert a.inputs["nps"] == pytest.approx(10)


def test_goal_measurements_outside_the_window_are_ignored() -> None:
    plan = plan_of(goal())
    observations = [
        obs("goal", 12, 95, goal_key="active_reps"),  # old
        obs("goal", 12, -3, goal_key="active_reps"),  # future
        obs("goal", 5, 10, goal_key="active_reps"),  # (5 - 2) / 10 = 0.3
    ]
    a = assess(observations, SETTINGS, AS_OF, success_plan=plan, plan_started=STARTED)
    assert a.goal_progress == {"active_reps": pytest.approx(0.3)}


# --------------------------------------------------------------------------- trend, level


def test_trend_is_level_minus_previous_level() -> None:
    previous = PreviousAssessment(quadrant=Quadrant.unhappy_profitable, level=-0.2)
    a = assess(
        [obs("nps", 10), obs("csat", 4), *money(10_000, 5_000)],
        SETTINGS,
        AS_OF,
        previous=previous,
    )
    customer = (0.25 * 1.0 + 0.15 * 0.5) / 0.40  # 0.8125
    level = (customer + 0.625) / 2  # 0.71875
    assert a.level == pytest.approx(level, abs=TOL)
    assert a.trend == pytest.approx(level - (-0.2), abs=TOL)
    assert a.previous_quadrant is Quadrant.unhappy_profitable
    assert a.quadrant is Quadrant.happy_profitable
    assert a.moved


def test_falling_trend_is_negative_and_same_quadrant_is_not_moved() -> None:
    previous = PreviousAssessment(quadrant=Quadrant.happy_profitable, level=0.9)
    a = assess(
        [obs("nps", 10), obs("csat", 4), *money(10_000, 5_000)],
        SETTINGS,
        AS_OF,
        previous=previous,
    )
    assert a.trend == pytest.approx((0.8125 + 0.625) / 2 - 0.9, abs=TOL)
    assert a.trend < 0
    assert not a.moved


def test_no_trend_without_a_previous_or_current_level() -> None:
    unknown_before = PreviousAssessment(quadrant=Quadrant.unknown, level=None)
    a = assess(
        [obs("nps", 10), obs("csat", 4), *money(10_000, 5_000)],
        SETTINGS,
        AS_OF,
        previous=unknown_before,
    )
    assert a.trend is None
    assert a.previous_quadrant is Quadrant.unknown
    assert a.moved

    known_before = PreviousAssessment(quadrant=Quadrant.happy_profitable, level=0.5)
    b = assess([obs("nps", 10)], SETTINGS, AS_OF, previous=known_before)
    assert b.level is None
    assert b.trend is None


# --------------------------------------------------------------------------- goals


def test_goal_progress_increase_and_decrease() -> None:
    reps = goal("active_reps", baseline=2, target=12)
    hours = goal("response_hours", baseline=48, target=24, direction=Direction.decrease)
    plan = plan_of(reps, hours)
    observations = [
        obs("goal", 4, 20, goal_key="active_reps"),
        obs("goal", 7, 2, goal_key="active_reps"),  # latest: (7 - 2) / 10 = 0.5
        obs("goal", 30, 5, goal_key="response_hours"),  # (30 - 48) / (24 - 48) = 0.75
        obs("goal", 99, 1, goal_key="not_in_plan"),
    ]
    assert goal_progress(plan, observations) == {
        "active_reps": pytest.approx(0.5),
        "response_hours": pytest.approx(0.75),
    }
    assert reps.progress(12) == pytest.approx(1.0)
    assert reps.progress(2) == pytest.approx(0.0)
    assert hours.progress(24) == pytest.approx(1.0)
    assert hours.progress(60) == pytest.approx(-0.5)  # worse than baseline


def test_goal_progress_without_plan_or_measurements() -> None:
    assert goal_progress(None, [obs("goal", 5, goal_key="active_reps")]) == {}
    assert goal_progress(plan_of(goal()), [obs("nps", 9)]) == {}


@pytest.mark.parametrize(
    ("measured", "expected_component"),
    [
        (7, 0.5),  # progress 0.5 == expected 0.5: on track -> 0.5
        (9.5, 1.0),  # 0.75, a quarter ahead -> 0.5 + 2 * 0.25 = 1.0
        (4.5, 0.0),  # 0.25, a quarter behind -> 0.0
        (2, -0.5),  # at baseline -> -0.5
        (12, 1.0),  # reached: 0.5 + 2 * 0.5 = 1.5 -> clipped
    ],
)
def test_goal_component_is_progress_against_expected(
    measured: float, expected_component: float
) -> None:
    plan = plan_of(goal())
    a = assess(
        [obs("goal", measured, goal_key="active_reps"), obs("nps", 7)],
        SETTINGS,
        AS_OF,
        success_plan=plan,
        plan_started=STARTED,
    )
    assert a.components["goal_progress"] == pytest.approx(expected_component, abs=TOL)
    # nps 7 -> 0, so customer = 0.35 * goal / (0.35 + 0.25)
    assert a.customer_score == pytest.approx(0.35 * expected_component / 0.60, abs=TOL)


def test_same_progress_scores_lower_closer_to_the_target_date() -> None:
    # Progress 0.5 in every case; only the date (so the expected progress) changes.
    plan_far = plan_of(goal(target_date=(AS_OF + timedelta(days=300)).date()))
    plan_due = plan_of(goal(target_date=AS_OF.date()))
    plan_late = plan_of(goal(target_date=(AS_OF - timedelta(days=30)).date()))
    measured = [obs("goal", 7, goal_key="active_reps"), obs("nps", 7)]

    far = assess(measured, SETTINGS, AS_OF, success_plan=plan_far, plan_started=STARTED)
    due = assess(measured, SETTINGS, AS_OF, success_plan=plan_due, plan_started=STARTED)
    late = assess(measured, SETTINGS, AS_OF, success_plan=plan_late, plan_started=STARTED)

    # expected 100 / 400 = 0.25 -> 0.5 + 2 * 0.25 = 1.0
    assert far.inputs["goal_progress_vs_expected"] == pytest.approx(0.25)
    assert far.components["goal_progress"] == pytest.approx(1.0)
    # expected 1.0 -> 0.5 + 2 * -0.5 = -0.5
    assert due.inputs["goal_progress_vs_expected"] == pytest.approx(-0.5)
    assert due.components["goal_progress"] == pytest.approx(-0.5)
    # past the date: expected is capped at 1.0
    assert late.components["goal_progress"] == pytest.approx(-0.5)


def test_goal_component_at_plan_start_expects_nothing() -> None:
    a = assess(
        [obs("goal", 2, 0, goal_key="active_reps"), obs("nps", 7)],
        SETTINGS,
        AS_OF,
        success_plan=plan_of(goal()),
        plan_started=AS_OF,
    )
    assert a.inputs["goal_progress_vs_expected"] == pytest.approx(0.0)
    assert a.components["goal_progress"] == pytest.approx(0.5)


def test_goal_component_averages_over_measured_goals() -> None:
    reps = goal("active_reps", baseline=2, target=12)
    hours = goal("response_hours", baseline=48, target=24, direction=Direction.decrease)
    unmeasured = goal("deals_logged", baseline=0, target=100)
    observations = [
        obs("goal", 8, goal_key="active_reps"),  # 0.6 -> +0.1
        obs("goal", 38.4, goal_key="response_hours"),  # (38.4 - 48) / -24 = 0.4 -> -0.1
        obs("nps", 7),
    ]
    a = assess(
        observations,
        SETTINGS,
        AS_OF,
        success_plan=plan_of(reps, hours, unmeasured),
        plan_started=STARTED,
    )
    assert a.goal_progress == {
        "active_reps": pytest.approx(0.6),
        "response_hours": pytest.approx(0.4),
    }
    assert a.inputs["goal_progress_vs_expected"] == pytest.approx(0.0, abs=TOL)
    assert a.components["goal_progress"] == pytest.approx(0.5, abs=TOL)


def test_goal_component_needs_the_plan_start() -> None:
    a = assess(
        [obs("goal", 7, goal_key="active_reps"), obs("nps", 7)],
        SETTINGS,
        AS_OF,
        success_plan=plan_of(goal()),
        plan_started=None,
    )
    assert "goal_progress" not in a.components
    assert "goal_progress" in a.missing
    assert a.goal_progress == {"active_reps": pytest.approx(0.5)}


# --------------------------------------------------------------------------- non-finite


@pytest.mark.parametrize(
    ("bad", "axis"),
    [
        (obs("nps", float("nan")), "customer"),
        (obs("revenue", float("nan")), "company"),
        (obs("revenue", float("inf")), "company"),
    ],
    ids=["nps-nan", "revenue-nan", "revenue-inf"],
)
def test_non_finite_figures_are_not_scored_as_perfect(bad: Observation, axis: str) -> None:
    observations = [obs("csat", 3), obs("fcr", 0.7), obs("revenue", 1_000), obs("cost", 600)]
    a = assess([*observations, bad], SETTINGS, AS_OF)
    score = a.customer_score if axis == "customer" else a.company_score
    # Without the bad figure the customer score is 0 and the company score 0.5.
    assert score is None or score == pytest.approx(0.0 if axis == "customer" else 0.5)
