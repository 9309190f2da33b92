"""How a synthetic B2B account behaves, and why it churns.

The churn literature models a subscriber's monthly decision to stay as logistic in the
value they get against what they pay (e.g. Fader and Hardie's "shifted-beta" and the
engagement-based churn models used in SaaS analytics). This module does the same, with
the data a product team really has: per-feature event rates per active user, seats and
active users, the plan's price, and a small share of churn that has nothing to do with
behaviour (a company acquired, a budget cut).

- Each account uses a subset of the product's features, each at its own per-user daily
  rate, drawn lognormal (a few heavy users, many light ones).
- Month to month, every rate drifts on a random walk around the account's own trend, and
  the share of seats actively used drifts with it.
- The value an account gets is the sum over the features it uses of their worth
  (diminishing returns: log of the monthly events per active user), times adoption. Its
  monthly churn probability is logistic in that value against its price per seat.
- A playbook the success team finishes on time may lift the account's rates.

Nothing here reads Tandem's scoring: churn follows from behaviour only, so a scoring
that predicts it has learnt something true about behaviour, not about this simulator.
Every draw comes from a generator seeded by (seed, account, what, when).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

# What the product's features are worth to a customer, per unit of log usage. The key
# features (the ones a plan would list) are worth the most.
FEATURE_WORTH: dict[str, float] = {
    "records_created": 1.0,
    "reports_shared": 1.2,
    "automations_run": 1.0,
    "dashboards_viewed": 0.5,
    "integrations_synced": 0.8,
    "invites_sent": 0.3,
}
KEY_FEATURES = ("records_created", "reports_shared", "automations_run")
PRICE_TIERS = (15.0, 30.0, 60.0)  # per seat per month
BASELINE_CHURN = 0.003  # a month, whatever the account does
TYPICAL_VALUE = 4.5  # the value a typical new account gets at the reference price
CHURN_AT_TYPICAL = -4.8  # logit of a month's behavioural churn there (about 0.8 %)
CHURN_SLOPE = 0.55  # change of that logit per unit of value
PRICE_WEIGHT = 1.0  # value needed per doubling of the price per seat
REFERENCE_PRICE = 30.0


def generator(seed: int, *parts: object) -> np.random.Generator:
    """A generator of its own per (seed, parts), stable across runs and platforms."""
    text = ":".join([str(seed), *map(str, parts)])
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8]))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


@dataclass
class Behaviour:
    """An account's hidden behaviour: what it uses, how much, what it pays."""

    key: str
    seats: int
    price_per_seat: float
    adoption: float  # share of seats active in a month
    rates: dict[str, float]  # events per active user per day, by feature (absent: unused)
    trend: float  # the account's own month-to-month drift of its log rates
    responsive: bool  # does a playbook done on time lift it?
    history: list[str] = field(default_factory=list)

    @property
    def mrr(self) -> float:
        return round(self.seats * self.price_per_seat, 2)

    @property
    def value(self) -> float:
        """What the account gets from the product: diminishing returns per feature."""
        used = sum(FEATURE_WORTH[f] * math.log1p(30 * r) for f, r in self.rates.items())
        return used * self.adoption

    @property
    def value_for_price(self) -> float:
        return self.value - PRICE_WEIGHT * math.log2(self.price_per_seat / REFERENCE_PRICE)

    def monthly_churn(self) -> float:
        """The probability of leaving this month."""
        gap = self.value_for_price - TYPICAL_VALUE
        behavioural = _sigmoid(CHURN_AT_TYPICAL - CHURN_SLOPE * gap)
        return BASELINE_CHURN + (1 - BASELINE_CHURN) * behavioural


def new_account(seed: int, key: str) -> Behaviour:
    """An account as it signs up: features, rates, seats and price drawn at random."""
    rng = generator(seed, key, "account")
    features = [f for f in FEATURE_WORTH if rng.random() < 0.55] or ["records_created"]
    level = rng.normal(0.0, 0.8)  # an account's overall intensity, shared by its features
    rates = {f: float(rng.lognormal(math.log(0.6) + level, 0.7)) for f in features}
    return Behaviour(
        key=key,
        seats=int(max(1, round(rng.lognormal(math.log(20), 0.9)))),
        price_per_seat=float(rng.choice(PRICE_TIERS)),
        adoption=float(np.clip(rng.beta(5, 3), 0.05, 1.0)),
        rates=rates,
        trend=float(rng.normal(0.0, 0.06)),
        responsive=bool(rng.random() < 0.5),
    )


def drift(account: Behaviour, seed: int, month: int) -> None:
    """A month passes: rates and adoption walk around the account's trend; a lightly
    used feature may be dropped and an unused one tried; seats follow adoption."""
    rng = generator(seed, account.key, "drift", month)
    for feature in list(account.rates):
        step = account.trend + rng.normal(0.0, 0.12)
        account.rates[feature] *= math.exp(step)
        if account.rates[feature] < 0.02 and rng.random() < 0.5:
            del account.rates[feature]
    unused = [f for f in FEATURE_WORTH if f not in account.rates]
    if unused and rng.random() < 0.08 + max(account.trend, 0):
        account.rates[str(rng.choice(unused))] = float(rng.lognormal(math.log(0.2), 0.5))
    account.adoption = float(
        np.clip(account.adoption + account.trend / 2 + rng.normal(0, 0.03), 0.02, 1.0)
    )
    if account.adoption > 0.92 and rng.random() < 0.3:
        account.seats = math.ceil(account.seats * 1.2)
        account.history.append(f"m{month}:expanded")
    elif account.adoption < 0.35 and account.seats > 1 and rng.random() < 0.25:
        account.seats = max(1, math.floor(account.seats * 0.75))
        account.history.append(f"m{month}:downgraded")


def churns_this_month(account: Behaviour, seed: int, month: int) -> bool:
    return bool(generator(seed, account.key, "churn", month).random() < account.monthly_churn())


def lift(account: Behaviour) -> None:
    """A playbook the team finished on time: a responsive account uses the product more."""
    account.history.append("playbook")
    if account.responsive:
        for feature in account.rates:
            account.rates[feature] *= 1.25
        account.adoption = min(1.0, account.adoption + 0.05)
        account.trend = max(account.trend, 0.0)


@dataclass(frozen=True)
class Period:
    """What the product recorded for an account over a period: events by feature, the
    distinct active users, seats, revenue, support tickets and any survey answer."""

    start: date
    days: int
    events: dict[str, int]
    active_users: int
    seats: int
    mrr: float
    tickets: int
    nps: int | None

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days)


def observe(
    account: Behaviour, seed: int, month: int, start: date, days: int, survey_rate: float
) -> Period:
    """Draw what the product records over `days` from `start`, the account's `month`:
    event counts are Poisson around rate x active users x days, with now and then a
    quiet week (holidays). Draws are seeded by the month, not the date, so a cohort
    run again another day, or under another plan, sees the same figures."""
    rng = generator(seed, account.key, "observe", month, days)
    active = int(rng.binomial(account.seats, account.adoption))
    quiet = 7 * 0.7 if days >= 14 and rng.random() < 0.15 else 0.0  # one week at 30 %
    effective_days = days - min(quiet, days)
    events = {
        feature: int(rng.poisson(rate * active * effective_days))
        for feature, rate in sorted(account.rates.items())
    }
    frustration = max(0.0, -account.value_for_price)
    tickets = int(rng.poisson(0.02 * active * days / 30 * (1 + frustration)))
    nps = None
    if rng.random() < survey_rate:
        answer = 7 + 2.5 * math.tanh(account.value_for_price / 2) + rng.normal(0, 1.2)
        nps = int(np.clip(round(answer), 0, 10))
    return Period(start, days, events, active, account.seats, account.mrr, tickets, nps)
