"""Scoring on the data teams have: usage per metric as daily rates, peers, breadth,
utilisation, revenue movement, support load and the estimated cost to serve (the churn
risk: tests/test_churn_risk.py). Every expected figure is worked out by hand in the
comments, from the formulas in models/scoring (docs/scoring.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.plan import ScoringSettings, UsageSettings
from models.public import AssessmentDetailPublic
from models.scoring import Quadrant, assess
from models.scoring.usage import (
    DailySeries,
    Span,
    Windows,
    daily_series,
    peer_day,
    peer_levels,
    percentile,
    recent_levels,
)
from models.signals import Observation, SignalKind

AS_OF = datetime(2026, 4, 1, tzinfo=UTC)
SETTINGS = ScoringSettings()
TOL = 1e-4
WINDOWS = Windows(28, 56)


def count(value: float, start: datetime, end: datetime, metric: str | None = None) -> Observation:
    return Observation(
        kind=SignalKind.usage, value=value, observed_at=end, period_start=start, metric=metric
    )


def daily(rates: dict[int, float], metric: str | None = None) -> list[Observation]:
    """One count per day; day 0 ends at AS_OF."""
    return [
        count(v, AS_OF - timedelta(days=d + 1), AS_OF - timedelta(days=d), metric)
        for d, v in rates.items()
    ]


def at(kind: str, value: float, days_ago: float = 1) -> Observation:
    return Observation(
        kind=SignalKind(kind), value=value, observed_at=AS_OF - timedelta(days=days_ago)
    )


def month(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- per-day rates


def test_a_february_and_a_march_of_the_same_daily_rate_score_the_same() -> None:
    # 10 a day: 280 in February (28 days), 310 in March (31 days). As monthly totals
    # March would read as a 10.7 % rise; as daily rates there is no change at all.
    same_rate = [count(280, month(2026, 2), month(2026, 3)), count(310, month(2026, 3), AS_OF)]
    a = assess(same_rate, SETTINGS, AS_OF)
    assert a.inputs["usage_change"] == pytest.approx(0.0, abs=TOL)
    assert a.components["usage_trend"] == pytest.approx(0.0, abs=TOL)
    # The same monthly total (300 and 300) is a lower daily rate in March: 9.68 vs 10.71.
    same_total = [count(300, month(2026, 2), month(2026, 3)), count(300, month(2026, 3), AS_OF)]
    b = assess(same_total, SETTINGS, AS_OF)
    assert b.inputs["usage_change"] == pytest.approx((300 / 31 - 300 / 28) / (300 / 28), abs=TOL)


def test_a_partial_period_is_a_daily_rate_too() -> None:
    # Ten days at 12 a day compare with a whole earlier month at 12 a day.
    observations = [
        count(12 * 31, month(2026, 1), month(2026, 2)),
        count(12 * 28, month(2026, 2), month(2026, 3)),
        count(12 * 21, month(2026, 3), AS_OF - timedelta(days=10)),
        count(12 * 10, AS_OF - timedelta(days=10), AS_OF),
    ]
    levels = recent_levels(daily_series(observations, AS_OF), WINDOWS)
    assert levels == {"usage": pytest.approx(12)}
    assert assess(observations, SETTINGS, AS_OF).components["usage_trend"] == pytest.approx(0)


def test_one_quiet_week_barely_moves_the_level() -> None:
    # 84 days at 10 a day, but nothing in days 7-13. Weekly rates in the recent window:
    # 10, 0, 10, 10: the median is 10, no change (a mean would say -25 %, score -0.5).
    rates = {d: 0.0 if 7 <= d <= 13 else 10.0 for d in range(84)}
    a = assess(daily(rates), SETTINGS, AS_OF)
    assert a.inputs["usage_change"] == pytest.approx(0.0)


def test_a_daily_reporter_that_falls_silent_is_using_nothing() -> None:
    # 10 a day until 14 days ago, then no reports at all. Days 1-13 count as zero (day 0
    # may not be rolled up yet): recent weekly rates 0, 0, 10, 10 -> median 5, -50 % -> -1.
    a = assess(daily({d: 10.0 for d in range(14, 84)}), SETTINGS, AS_OF)
    assert a.inputs["usage_change"] == pytest.approx(-0.5)
    assert a.components["usage_trend"] == pytest.approx(-1.0)


def test_a_monthly_reporter_mid_month_is_not_read_as_silent() -> None:
    # Reports for January to March; assessed on 15 April, before April's report exists.
    as_of = datetime(2026, 4, 15, tzinfo=UTC)
    observations = [
        count(31 * 8, month(2026, 1), month(2026, 2)),
        count(28 * 8, month(2026, 2), month(2026, 3)),
        count(31 * 8, month(2026, 3), month(2026, 4)),
    ]
    a = assess(observations, SETTINGS, as_of)
    assert a.inputs["usage_change"] == pytest.approx(0.0)


def test_a_monthly_metric_beside_weekly_ones_waits_for_its_month() -> None:
    # Weekly `dashboards` at 5 a day up to 2 days ago; monthly `alerts` at 1 a day for
    # January to March, assessed on 15 April before April's report exists. Both flat:
    # no change. Read on the weekly metrics' period, the alerts' April would be zeros
    # (recent level 0 against 1: -100 %, a mean change of -50 %).
    as_of = datetime(2026, 4, 15, tzinfo=UTC)
    weeks = [
        count(
            35, as_of - timedelta(days=7 * w + 9), as_of - timedelta(days=7 * w + 2), "dashboards"
        )
        for w in range(12)
    ]
    alerts = [
        count(31, month(2026, 1), month(2026, 2), "alerts"),
        count(28, month(2026, 2), month(2026, 3), "alerts"),
        count(31, month(2026, 3), month(2026, 4), "alerts"),
    ]
    a = assess([*weeks, *alerts], SETTINGS, as_of)
    assert a.inputs["usage_change"] == pytest.approx(0.0)


def test_weekly_reports_read_like_monthly_ones() -> None:
    # Twelve weekly counts at 5 a day, then four at 4 a day: -20 % -> -0.4.
    weeks = [
        count(
            (4 if w < 4 else 5) * 7,
            AS_OF - timedelta(days=7 * w + 7),
            AS_OF - timedelta(days=7 * w),
        )
        for w in range(12)
    ]
    a = assess(weeks, SETTINGS, AS_OF)
    assert a.inputs["usage_change"] == pytest.approx(-0.2)
    assert a.components["usage_trend"] == pytest.approx(-0.4)


def test_a_week_with_exactly_a_day_of_report_counts_however_the_days_round() -> None:
    """Days are differences of moments: a day's worth of report in a week can come out
    a hair under 1.0 (here 0.9999999999999964), and whether it counts must not hang on
    that rounding (two runs of one seeded simulation differed on it)."""
    offset = 24.95592256534228  # where a window starts, in days before as_of
    series = DailySeries(spans=[Span(newest=offset + 6.5, oldest=offset + 30, rate=3.0)])
    first_week_cover = (offset + 0.5 + 7) - (offset + 6.5)
    assert first_week_cover < 1.0  # the rounding this test is about
    assert series.level(offset + 0.5, 7) == 3.0


def test_usage_change_is_the_mean_over_metrics_whatever_their_scale() -> None:
    # Logins rise 10 % (1000 -> 1100 a day), exports fall 50 % (2 -> 1 a day): mean -20 %.
    logins = daily({d: 1100.0 if d < 28 else 1000.0 for d in range(84)}, "logins")
    exports = daily({d: 1.0 if d < 28 else 2.0 for d in range(84)}, "exports")
    a = assess(logins + exports, SETTINGS, AS_OF)
    assert a.inputs["usage_change"] == pytest.approx((0.1 - 0.5) / 2)
    assert a.components["usage_trend"] == pytest.approx(-0.4)


def test_usage_alone_is_enough_for_the_customer_axis() -> None:
    # No survey, no goal: the customer axis stands on usage (DOMAIN.md §6).
    a = assess(daily({d: 1100.0 if d < 28 else 1000.0 for d in range(84)}), SETTINGS, AS_OF)
    assert a.customer_score == pytest.approx(0.2)  # +10 % -> 0.1 / 0.5
    assert a.quadrant is Quadrant.unknown  # no revenue: the company axis is missing


# --------------------------------------------------------------------------- peers, breadth


def test_percentile_is_mid_rank() -> None:
    peers = [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert percentile(8, peers) == pytest.approx(0.75)  # 7 below, 1 equal: 7.5 / 10
    assert percentile(0, peers) == 0.0
    assert percentile(11, peers) == 1.0


def test_usage_against_peers_on_the_same_plan() -> None:
    # 8 a day among peers at 1..10 a day: percentile 0.75 -> 2 * 0.75 - 1 = 0.5.
    peers = {"usage": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
    a = assess(daily({d: 8.0 for d in range(28)}), SETTINGS, AS_OF, peers=peers)
    assert a.inputs["usage_percentile"] == pytest.approx(0.75)
    assert a.components["usage_peers"] == pytest.approx(0.5)
    # A small but steady account and a collapsing one of the same size now differ.
    small_steady = assess(daily({d: 2.0 for d in range(84)}), SETTINGS, AS_OF, peers=peers)
    assert small_steady.components["usage_trend"] == 0.0
    assert small_steady.components["usage_peers"] == pytest.approx(2 * 0.15 - 1)


def test_too_few_peers_give_no_percentile() -> None:
    a = assess(daily({d: 8.0 for d in range(28)}), SETTINGS, AS_OF, peers={"usage": [1, 2, 3, 4]})
    assert "usage_peers" in a.missing


def test_breadth_is_the_share_of_key_features_used() -> None:
    settings = ScoringSettings(usage=UsageSettings(key_features=["a", "b", "c", "d"]))
    used = daily({d: 3.0 for d in range(28)}, "a") + daily({d: 1.0 for d in range(28)}, "b")
    unused = daily({d: 0.0 for d in range(28)}, "c")  # reported, but zero
    a = assess(used + unused, settings, AS_OF)
    assert a.inputs["breadth"] == pytest.approx(0.5)  # a and b of four
    assert a.components["breadth"] == pytest.approx(0.0)  # 2 * 0.5 - 1


def test_a_report_still_to_come_leaves_the_metric_read_on_its_latest_days() -> None:
    # Key features a (monthly), b (daily) and c (four-weekly). On 1 April a's March report
    # is still to come: its February one ended 31 days ago (period 29.5 days, the median
    # of 31 and 28), so no report covers a's last 28 days. A report up to one period late
    # is awaited: a is read on the 28 days before its February report ended (10 a day),
    # instead of reading as unused on the last days of every month. c's last report
    # ended 60 days ago, more than a period late (28): c has stopped, and counts as unused.
    settings = ScoringSettings(usage=UsageSettings(key_features=["a", "b", "c"]))
    a = [
        count(310, month(2026, 1), month(2026, 2), "a"),
        count(280, month(2026, 2), month(2026, 3), "a"),
    ]
    b = daily({d: 2.0 for d in range(84)}, "b")
    c = [count(56, AS_OF - timedelta(days=88), AS_OF - timedelta(days=60), "c")]
    peers = {metric: [1.0, 2, 3, 4, 5] for metric in "abc"}
    result = assess([*a, *b, *c], settings, AS_OF, peers=peers)
    assert result.inputs["breadth"] == pytest.approx(2 / 3, abs=TOL)  # a, b used; c not
    # Among 1..5 a day: a at 10 is above all (1.0); b at 2 has 1 below and 1 equal
    # ((1 + 0.5) / 5 = 0.3); c at 0 is below all (0). Mean (1 + 0.3 + 0) / 3.
    assert result.inputs["usage_percentile"] == pytest.approx(1.3 / 3, abs=TOL)
    # a against its own January (10 a day both months): no change; b flat; c has no
    # recent level. Mean change 0.
    assert result.inputs["usage_change"] == pytest.approx(0.0, abs=TOL)


def test_an_account_reporting_monthly_keeps_its_usage_through_the_month() -> None:
    # Monthly counts only: on the last days of March (February's report ended 28 days or
    # more ago) the account is read on February, as on any other day of March.
    monthly = [count(300, month(2026, m), month(2026, m + 1), "a") for m in (1, 2)]
    levels = []
    for day in (15, 28, 29, 31):
        as_of = datetime(2026, 3, day, tzinfo=UTC)
        result = assess(monthly, SETTINGS, as_of)
        assert "usage_trend" not in result.missing, day
        levels.append(result.inputs["usage_change"])
    # February's 300 over 28 days against January's over 31: +10.7 %, from day 29 on.
    assert levels[2] == levels[3] == pytest.approx((300 / 28 - 300 / 31) / (300 / 31), abs=TOL)


def test_a_metric_reported_only_lately_is_not_growth_from_nothing() -> None:
    # `a` flat at 3 a day for 84 days; `b` (a feature just tracked, or a misspelt name)
    # reported for the last 10 days only. `b` has no earlier level of its own: zeros
    # before its first report would read as +100 %, and the mean change as +50 %.
    a_flat = daily({d: 3.0 for d in range(84)}, "a")
    b_new = daily({d: 5.0 for d in range(10)}, "b")
    result = assess([*a_flat, *b_new], SETTINGS, AS_OF)
    assert result.inputs["usage_change"] == pytest.approx(0.0)


def test_only_the_plans_metrics_are_scored() -> None:
    # The plan lists `a`: `b` is recorded but not scored. `a` flat at 3 a day: change 0;
    # `b` collapsing would have pulled the mean change down to -50 %.
    settings = ScoringSettings(usage=UsageSettings(metrics=["a"]))
    a_flat = daily({d: 3.0 for d in range(84)}, "a")
    b_gone = daily({d: 5.0 for d in range(28, 84)}, "b")
    a = assess([*a_flat, *b_gone], settings, AS_OF)
    assert a.inputs["usage_change"] == pytest.approx(0.0)
    assert assess([*a_flat, *b_gone], SETTINGS, AS_OF).inputs["usage_change"] == pytest.approx(-0.5)


def test_an_account_reporting_active_users_only_has_no_feature_figures() -> None:
    # Its product reports no feature: breadth and the rank on the key features are
    # unknown, not the bottom. Utilisation (12 of 20 seats: 0.6 -> 0.25) still counts.
    settings = ScoringSettings(usage=UsageSettings(key_features=["a", "b"]))
    peers = {"a": [1.0, 2, 3, 4, 5], "b": [1.0, 2, 3, 4, 5], "active_users": [5.0, 8, 12, 20, 40]}
    users = daily({d: 12.0 for d in range(28)}, "active_users")
    a = assess([*users, at("seats", 20)], settings, AS_OF, peers=peers)
    assert "breadth" in a.missing and "usage_peers" in a.missing
    assert a.components["utilisation"] == pytest.approx(0.25)
    # One feature reported makes the others unused: breadth 1 of 2, ranked on both.
    with_a = assess(
        [*users, *daily({d: 3.0 for d in range(28)}, "a")], settings, AS_OF, peers=peers
    )
    assert with_a.inputs["breadth"] == pytest.approx(0.5)
    assert with_a.inputs["usage_percentile"] == pytest.approx((0.5 + 0.0) / 2)


# --------------------------------------------------------------------------- seats, MRR, tickets


def test_utilisation_is_active_users_per_seat() -> None:
    # 30 active users a day on 50 seats: 0.6 -> (0.6 - 0.5) / 0.4 = 0.25.
    users = daily({d: 30.0 for d in range(28)}, "active_users")
    a = assess([*users, at("seats", 50)], SETTINGS, AS_OF)
    assert a.inputs["utilisation"] == pytest.approx(0.6)
    assert a.components["utilisation"] == pytest.approx(0.25)


def test_monthly_active_users_are_a_level_not_a_count() -> None:
    # 31 distinct users over March is 31 users, not one a day.
    users = count(31, month(2026, 3), AS_OF, "active_users")
    a = assess([users, at("seats", 31)], SETTINGS, AS_OF)
    assert a.inputs["utilisation"] == pytest.approx(1.0)
    assert a.components["utilisation"] == pytest.approx(1.0)  # (1 - 0.5) / 0.4 clipped


@pytest.mark.parametrize(
    ("tickets", "score"),
    [
        (9, 0.0),  # 9 in 90 days = 3 a month, per 30 users = 0.1: the neutral point
        (21, (0.1 - 7 / 30) / 0.2),  # 7 a month / 30 = 0.2333 -> -0.6667
        (0, 0.5),  # no tickets: (0.1 - 0) / 0.2
    ],
)
def test_support_load_is_tickets_per_active_user(tickets: float, score: float) -> None:
    users = daily({d: 30.0 for d in range(28)}, "active_users")
    a = assess([*users, at("tickets", tickets, 20)], SETTINGS, AS_OF)
    assert a.components["support_load"] == pytest.approx(score, abs=TOL)


@pytest.mark.parametrize(("latest", "score"), [(800, -1.0), (900, -0.5), (1100, 0.5)])
def test_a_downgrade_is_a_signal(latest: float, score: float) -> None:
    # MRR 1000 before the recent window, then `latest`: change / 20 %.
    a = assess([at("mrr", 1000, 60), at("mrr", latest, 5)], SETTINGS, AS_OF)
    assert a.components["revenue_movement"] == pytest.approx(score)


def test_seats_and_mrr_stand_until_they_change() -> None:
    # Recorded when the contract began, 200 days ago, and not since: seats 50 and MRR
    # 1000 still hold inside the 90-day window. 30 active users a day on 50 seats: 0.6
    # -> 0.25. MRR 1000 a month against the estimated 100: margin 0.9 -> clipped 1.
    users = daily({d: 30.0 for d in range(28)}, "active_users")
    contract = [at("seats", 50, 200), at("mrr", 1000, 200)]
    a = assess([*users, *contract], SETTINGS, AS_OF)
    assert a.inputs["utilisation"] == pytest.approx(0.6)
    assert a.inputs["revenue"] == pytest.approx(1000)
    assert a.company_score == pytest.approx(1.0)
    # A downgrade to 800 twenty days ago is measured against the MRR that stood before
    # the recent window (1000): -20 % -> -1. Only the latest before the window counts.
    downgraded = assess(
        [*users, at("mrr", 1200, 300), *contract, at("mrr", 800, 20)], SETTINGS, AS_OF
    )
    assert downgraded.inputs["mrr_change"] == pytest.approx(-0.2)
    assert downgraded.components["revenue_movement"] == pytest.approx(-1.0)


# --------------------------------------------------------------------------- cost to serve


def test_the_same_reading_sent_twice_counts_once() -> None:
    # Tickets 3 and revenue 900 for March, each sent twice: still 3 / 31 * 30 = 2.9032
    # tickets a month and 900 / 31 * 30 = 870.97 of revenue. A second, different count
    # for the same period is another reading and adds up.
    def march(kind: str, value: float) -> Observation:
        return Observation(
            kind=SignalKind(kind), value=value, observed_at=AS_OF, period_start=month(2026, 3)
        )

    twice = [march("tickets", 3), march("tickets", 3), march("revenue", 900), march("revenue", 900)]
    a = assess([*twice, at("nps", 8)], SETTINGS, AS_OF)
    assert a.inputs["revenue"] == pytest.approx(900 / 31 * 30, abs=TOL)
    assert a.inputs["cost"] == pytest.approx(100 + 3 / 31 * 30 * 25, abs=TOL)
    more = assess([*twice, march("tickets", 2), at("nps", 8)], SETTINGS, AS_OF)
    assert more.inputs["cost"] == pytest.approx(100 + 5 / 31 * 30 * 25, abs=TOL)
    # Two invoices of 900 the sender told apart by their ids are two.
    invoices = [march("revenue", 900).model_copy(update={"client_id": f"inv-{n}"}) for n in (1, 2)]
    billed = assess([*invoices, at("nps", 8)], SETTINGS, AS_OF)
    assert billed.inputs["revenue"] == pytest.approx(1800 / 31 * 30, abs=TOL)


def test_billing_alone_does_not_place_the_customer_axis() -> None:
    # MRR 1000 then 1000: flat, revenue_movement 0. Alone it says nothing of happiness:
    # the customer axis is unknown, the account not called neutral (nor at risk).
    flat = [at("mrr", 1000, 60), at("mrr", 1000, 1)]
    a = assess(flat, SETTINGS, AS_OF)
    assert a.components["revenue_movement"] == 0.0
    assert a.customer_score is None and a.quadrant is Quadrant.unknown
    assert not a.at_risk and a.risks == []
    # With one thing the customer did or said, it counts: nps 9 -> 0.6667 (weight .15),
    # revenue_movement 0 (weight .07): (0.15 * 0.6667) / 0.22 = 0.4545.
    heard = assess([*flat, at("nps", 9)], SETTINGS, AS_OF)
    assert heard.customer_score == pytest.approx(0.4545, abs=TOL)


def test_without_a_recorded_cost_the_cost_to_serve_is_estimated() -> None:
    # Per month over the 90-day window (no periods: the window is what they cover):
    # revenue 1000 / 3 = 333.33; cost 100 base + 4 / 3 tickets * 25 + 2 / 3 hours * 80 = 186.67.
    # Margin (333.33 - 186.67) / 333.33 = 0.44 -> 0.5 * 0.44 / 0.4 = 0.55.
    observations = [at("revenue", 1000, 10), at("tickets", 4), at("success_hours", 2), at("nps", 8)]
    a = assess(observations, SETTINGS, AS_OF)
    assert a.inputs["revenue"] == pytest.approx(333.3333, abs=TOL)
    assert a.inputs["cost"] == pytest.approx(186.6667, abs=TOL)
    assert a.company_score == pytest.approx(0.55)
    assert a.estimated == ["cost"]
    margin = next(e for e in a.explanation if e.component == "margin")
    assert margin.estimated and margin.figure == pytest.approx(0.44)


def test_a_recorded_cost_is_used_as_it_is() -> None:
    a = assess([at("revenue", 1000, 10), at("cost", 800, 10), at("nps", 8)], SETTINGS, AS_OF)
    assert a.estimated == []
    assert a.company_score == pytest.approx(0.5 * 0.2 / 0.4)


def test_mrr_alone_stands_for_the_months_revenue() -> None:
    # MRR 400 a month; estimated cost 100 a month: margin 0.75 -> clipped 0.9375.
    a = assess([at("mrr", 400, 3), at("nps", 8)], SETTINGS, AS_OF)
    assert a.inputs["revenue"] == pytest.approx(400)
    assert a.company_score == pytest.approx(0.5 * 0.75 / 0.4)
    assert a.estimated == ["revenue", "cost"]


def test_a_months_revenue_meets_a_months_cost() -> None:
    # Revenue 400 for March (31 days): 400 / 31 * 30 = 387.10 a month, against the
    # estimated 100 a month: margin 0.7417 -> 0.5 * 0.7417 / 0.4 = 0.9271. Spread over the
    # 90-day window it would have been 133.33 a month against 100: margin 0.25, 0.3125.
    march = Observation(
        kind=SignalKind.revenue, value=400, observed_at=AS_OF, period_start=month(2026, 3)
    )
    a = assess([march, at("nps", 8)], SETTINGS, AS_OF)
    assert a.inputs["revenue"] == pytest.approx(400 / 31 * 30, abs=TOL)
    assert a.inputs["margin"] == pytest.approx(1 - 100 / (400 / 31 * 30), abs=TOL)
    assert a.company_score == pytest.approx(0.9271, abs=TOL)


def test_a_months_tickets_are_that_months_load() -> None:
    # 3 tickets over March (31 days), 10 active users: 3 / 31 * 30 / 10 = 0.2903 tickets a
    # user a month -> (0.1 - 0.2903) / 0.2 = -0.95. Estimated cost: 100 + 2.9032 * 25.
    users = daily({d: 10.0 for d in range(28)}, "active_users")
    tickets = Observation(
        kind=SignalKind.tickets, value=3, observed_at=AS_OF, period_start=month(2026, 3)
    )
    a = assess([*users, tickets, at("mrr", 1000)], SETTINGS, AS_OF)
    assert a.inputs["tickets_per_user_month"] == pytest.approx(3 / 31 * 30 / 10, abs=TOL)
    assert a.components["support_load"] == pytest.approx(-0.9516, abs=TOL)
    assert a.inputs["cost"] == pytest.approx(100 + 3 / 31 * 30 * 25, abs=TOL)


# --------------------------------------------------------------------------- explanation


def test_each_component_is_explained_with_its_figure_score_and_weight() -> None:
    # nps 10 -> 1.0 (weight .15), utilisation 0.6 -> 0.25 (weight .10): shares .6, .4.
    users = daily({d: 30.0 for d in range(28)}, "active_users")
    a = assess([*users, at("seats", 50), at("nps", 10)], SETTINGS, AS_OF)
    rows = {e.component: (e.figure, e.score, e.weight) for e in a.explanation}
    assert rows["nps"] == (pytest.approx(10), pytest.approx(1.0), pytest.approx(0.6))
    assert rows["utilisation"] == (
        pytest.approx(0.6),
        pytest.approx(0.25),
        pytest.approx(0.4),
    )
    assert a.customer_score == pytest.approx(0.6 * 1 + 0.4 * 0.25, abs=TOL)


def test_readers_see_the_explanation() -> None:
    """The API, CLI and dashboard read an assessment's stored detail through its read
    model: the explanation, the estimated inputs and the risk's horizon come along."""
    a = assess([at("nps", 8), at("revenue", 1000, 10)], SETTINGS, AS_OF)
    shown = AssessmentDetailPublic.model_validate(a.model_dump(mode="json"))
    assert shown.explanation == a.explanation and shown.estimated == ["cost"]
    assert shown.horizon_days == 90 and shown.at_risk == a.at_risk


def test_the_hour_of_an_assessment_does_not_move_the_account_among_its_peers() -> None:
    """Peers are read as of the start of the day; the account is ranked on its own figures
    as of then too, so a check-in at 01:00 and one at 23:00 place it alike."""

    def monthly(counts: list[float], end: datetime) -> list[Observation]:
        reports = []
        for n, value in enumerate(reversed(counts)):
            stop = end - timedelta(days=30 * n)
            reports.append(count(value, stop - timedelta(days=30), stop, "invites_sent"))
        return reports

    # Reports end at an odd moment, as rollups sent by a pipeline do: the daily rates are
    # then sums of fractions, where the order of the arithmetic shows in the last bits.
    reported = datetime(2026, 3, 31, 17, 37, 51, 307000, tzinfo=UTC)
    accounts = [monthly([311, 1078 + 97 * k], reported) for k in (-2, -1, 1, 2)]
    mine = monthly([311, 1078], reported)
    windows = Windows(SETTINGS.usage.recent_days, SETTINGS.usage.baseline_days)
    ranks = set()
    for minutes in range(60, 24 * 60, 37):
        as_of = AS_OF + timedelta(minutes=minutes)
        peers = peer_levels([*accounts, mine], peer_day(as_of), windows)
        ranks.add(assess(mine, SETTINGS, as_of, peers=peers).inputs["usage_percentile"])
    assert ranks == {0.5}  # the middle of five, its own entry a tie
