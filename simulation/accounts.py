"""Synthetic customers: who signs up, what they define as success, what the product
records about them, and how they answer the success team.

How an account behaves, and so whether it churns, is `simulation.behaviour`; this
module turns that hidden behaviour into what a real team has: a sign-up, monthly
product usage per feature, active users and seats, MRR, support tickets, a survey
answer now and then, and goals measured on the product's own metrics. No cost to
serve is recorded: scoring must estimate it, as it must for most real teams.

Every draw comes from a generator seeded by (seed, account, what, when), so results do
not depend on the order in which the simulator handles customers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from models.customer import SignUp
from models.signals import ACTIVE_USERS, SignalIn, SignalKind
from models.tasks import RenewalOutcome
from simulation.behaviour import (
    KEY_FEATURES,
    TYPICAL_VALUE,
    Behaviour,
    Period,
    new_account,
    observe,
)

# Segments are what a team sees of an account before any behaviour: its price tier.
SEGMENTS = {15.0: "starter", 30.0: "team", 60.0: "business"}
SURVEY_RATE = 0.1  # share of months in which the account answers a survey
LATE_SHARE = 0.15  # how often the team is late on a task
COMPANIES = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell",
    "Cyberdyne", "Soylent", "Wonka", "Gringotts", "Oscorp", "Vandelay", "Pied Piper",
]  # fmt: skip


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator of its own per (seed, parts): str seeds are hashed with SHA-512."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


@dataclass
class Account:
    """One synthetic customer and what the simulator knows (and hides) about it."""

    index: int
    signup: SignUp
    behaviour: Behaviour
    goals: list[dict[str, Any]]
    let_go: bool = False
    churned_month: int | None = None
    plan_start_day: float | None = None
    target_day: float = 365.0
    playbooks_done: list[str] = field(default_factory=list)

    @property
    def customer_id(self) -> str:
        return self.signup.customer_id

    @property
    def key(self) -> str:
        """Seeds draws by position in the cohort, not by id, so the same seeded cohort
        under another plan (other ids) makes the same draws."""
        return f"c{self.index}"

    @property
    def segment(self) -> str:
        return SEGMENTS[self.behaviour.price_per_seat]


def weekly(behaviour: Behaviour, feature: str) -> float:
    """The account's expected events of a feature a week, all active users together."""
    rate = behaviour.rates.get(feature, 0.0)
    return rate * behaviour.seats * behaviour.adoption * 7


def _goals(behaviour: Behaviour, rng: random.Random) -> list[dict[str, Any]]:
    """Their definition of success, on the features they came for: half as much again
    of one or two key features a week (their baseline is what they do at sign-up)."""
    used = [f for f in KEY_FEATURES if f in behaviour.rates] or sorted(behaviour.rates)
    chosen = rng.sample(used, min(len(used), 2 if behaviour.seats >= 20 else 1))
    goals = []
    for feature in chosen:
        baseline = max(1.0, round(weekly(behaviour, feature)))
        goals.append(
            {
                "key": f"{feature}_weekly",
                "metric": f"{feature.replace('_', ' ')} a week",
                "unit": "events",
                "baseline": baseline,
                "target": math.ceil(baseline * 1.5),
                "direction": "increase",
            }
        )
    return goals


def make_cohort(seed: int, size: int, prefix: str) -> list[Account]:
    """`size` customers with ids `<prefix>-0000`..., each with a behaviour of its own."""
    accounts = []
    for i in range(size):
        rng = rng_for(seed, "account", i)
        behaviour = new_account(seed, f"c{i}")
        company = f"{rng.choice(COMPANIES)} {i}"
        signup = SignUp(
            company=company,
            contact_name=f"Contact {i}",
            email=f"contact{i}@{prefix}.simulated.test",
            external_id=f"{prefix}-{i:04d}",
            owner="sam.manager",
        )
        accounts.append(Account(i, signup, behaviour, _goals(behaviour, rng)))
    return accounts


def period_signals(
    account: Account, seed: int, month: int, start: datetime, days: int
) -> list[SignalIn]:
    """What the product recorded over the `month`'s `days` from `start`, as the signals a
    team sends."""
    period = observe(account.behaviour, seed, month, start.date(), days, SURVEY_RATE)
    end = start + timedelta(days=days)

    def signal(kind: SignalKind, value: float, **extra: Any) -> SignalIn:
        return SignalIn(
            customer_id=account.customer_id,
            kind=kind,
            value=value,
            observed_at=end,
            source="simulation",
            **extra,
        )

    counts = {"period_start": start}
    signals = [
        signal(SignalKind.usage, count, metric=feature, **counts)
        for feature, count in period.events.items()
    ]
    signals += [
        signal(SignalKind.usage, period.active_users, metric=ACTIVE_USERS),
        signal(SignalKind.seats, period.seats),
        signal(SignalKind.mrr, period.mrr),
        signal(SignalKind.revenue, period.mrr * days / 30, **counts),
        signal(SignalKind.tickets, period.tickets, **counts),
    ]
    if period.nps is not None:
        signals.append(signal(SignalKind.nps, period.nps))
    if account.plan_start_day is not None:
        signals += [
            signal(SignalKind.goal, value, goal_key=key)
            for key, value in goal_values(account, period).items()
        ]
    return signals


def goal_values(account: Account, period: Period) -> dict[str, float]:
    """Each goal's measured value over the period: its feature's events a week."""
    values = {}
    for goal in account.goals:
        feature = goal["key"].removesuffix("_weekly")
        values[goal["key"]] = round(period.events.get(feature, 0) / period.days * 7, 1)
    return values


def success_plan(account: Account, start: date, target_days: int = 365) -> dict[str, Any]:
    """The kickoff's record of how this customer defines success, in their words."""
    goals = [
        {**g, "target_date": (start + timedelta(days=target_days)).isoformat()}
        for g in account.goals
    ]
    metrics = " and ".join(g["metric"] for g in account.goals)
    return {
        "intended_use": f"{account.signup.company} runs its day-to-day work in the product",
        "success_definition": f"We see it in {metrics}",
        "goals": goals,
        "objectives": ["Retire the spreadsheets", "Every team live within the year"],
        "constraints": ["Roll out one team at a time"],
    }


def manager_rating(account: Account, seed: int, task_key: str) -> str:
    """The manager's view: mostly how much value the account gets, and whether it pays
    well; one in six is too optimistic."""
    rng = rng_for(seed, task_key, "rating")
    if rng.random() < 1 / 6:
        return "happy_profitable"
    happy = account.behaviour.value_for_price >= TYPICAL_VALUE - 1
    profitable = account.behaviour.mrr >= 300
    return f"{'happy' if happy else 'unhappy'}_{'profitable' if profitable else 'unprofitable'}"


def renewal_decision(account: Account, seed: int, task_key: str) -> tuple[RenewalOutcome, str]:
    """The answer at renewal: a renewal is a decision point, so an account is about as
    likely to leave there as over half a year of ordinary months."""
    rng = rng_for(seed, task_key, "renewal")
    behaviour = account.behaviour
    if account.let_go:
        return RenewalOutcome.churned, "We decided to stop investing in the account (let go)"
    leaving = 1 - (1 - behaviour.monthly_churn()) ** 6
    if rng.random() < leaving:
        return RenewalOutcome.churned, "Not getting enough value for the price"
    if behaviour.adoption > 0.85:
        return RenewalOutcome.expanded, "Rolling out to more teams"
    if behaviour.adoption < 0.4:
        return RenewalOutcome.downgraded, "Fewer seats while adoption catches up"
    return RenewalOutcome.renewed, "On track against their goals"
