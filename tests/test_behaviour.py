"""The simulator's behaviour model: churn follows from what accounts do."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from simulation.behaviour import (
    BASELINE_CHURN,
    Behaviour,
    churns_this_month,
    drift,
    lift,
    new_account,
    observe,
)


def _account(**changes: object) -> Behaviour:
    base = Behaviour(
        key="c1",
        seats=20,
        price_per_seat=30.0,
        adoption=0.6,
        rates={"records_created": 0.6, "reports_shared": 0.6},
        trend=0.0,
        responsive=True,
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_the_same_seed_draws_the_same_cohort_and_months() -> None:
    first = [new_account(7, f"c{i}") for i in range(20)]
    second = [new_account(7, f"c{i}") for i in range(20)]
    assert first == second
    for month in range(1, 4):
        for a, b in zip(first, second, strict=True):
            drift(a, 7, month)
            drift(b, 7, month)
    assert first == second
    assert [new_account(8, f"c{i}") for i in range(20)] != first


def test_churn_falls_as_the_value_an_account_gets_rises() -> None:
    light = _account(rates={"records_created": 0.05})
    typical = _account()
    heavy = _account(
        rates={f: 2.0 for f in ("records_created", "reports_shared", "automations_run")}
    )
    assert light.value < typical.value < heavy.value
    assert light.monthly_churn() > typical.monthly_churn() > heavy.monthly_churn()
    # Behaviour-unrelated churn remains for even the best account.
    assert heavy.monthly_churn() > BASELINE_CHURN


def test_a_higher_price_for_the_same_use_raises_churn() -> None:
    assert _account(price_per_seat=60.0).monthly_churn() > _account().monthly_churn()


def test_a_playbook_lifts_only_an_account_that_responds() -> None:
    responsive, stubborn = _account(), _account(responsive=False)
    before = responsive.value
    lift(responsive)
    lift(stubborn)
    assert responsive.value > before
    assert stubborn.value == pytest.approx(before)


def test_observed_counts_are_a_daily_rate_times_active_users_times_days() -> None:
    account = _account(seats=200, adoption=1.0, rates={"records_created": 1.0})
    february = observe(account, 1, 1, date(2026, 2, 1), 28, survey_rate=0.0)
    march = observe(account, 1, 2, date(2026, 3, 1), 31, survey_rate=0.0)
    per_day = [p.events["records_created"] / p.days / p.active_users for p in (february, march)]
    # Poisson around 1.0 a user a day; a quiet week can take at most 0.7 * 7 days off.
    assert all(0.8 < rate < 1.05 for rate in per_day)
    assert february.nps is None and march.nps is None


def test_churn_over_a_cohort_tracks_the_model_and_is_reproducible() -> None:
    accounts = [new_account(3, f"c{i}") for i in range(400)]
    expected = sum(a.monthly_churn() for a in accounts)
    churned = sum(churns_this_month(a, 3, 0) for a in accounts)
    assert churned == sum(churns_this_month(a, 3, 0) for a in copy.deepcopy(accounts))
    # Within four standard deviations of a sum of Bernoulli draws.
    spread = sum(p * (1 - p) for p in (a.monthly_churn() for a in accounts)) ** 0.5
    assert abs(churned - expected) < 4 * spread + 1


def test_what_a_month_records_does_not_depend_on_the_calendar() -> None:
    """A cohort run another day, or under a second plan started later, sees the same
    figures: draws are seeded by the account's month, not by the date."""
    account = _account()
    monday = observe(account, 1, 3, date(2026, 3, 2), 29, survey_rate=0.5)
    later = observe(account, 1, 3, date(2026, 3, 9), 29, survey_rate=0.5)
    assert monday.events == later.events and monday.nps == later.nps
