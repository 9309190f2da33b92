"""Synthetic customers: personas, their hidden state, and the signals they emit.

A persona is a kind of account: where it starts in the success quadrant (a hidden
happiness in [-1, 1] and a margin), how it drifts month to month, whether a playbook done
for it helps, how engaged it is with onboarding, and how it decides at renewal. The
signals are drawn from the hidden state so that Tandem's scoring, reading them, lands
near it: each customer-side component is built to score about the hidden happiness.

Every draw comes from a random.Random seeded by (seed, customer, what, when), so results
do not depend on the order in which the simulator handles customers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from models.customer import SignUp
from models.tasks import RenewalOutcome


@dataclass(frozen=True)
class Persona:
    key: str
    description: str
    quadrant: str  # where it starts
    happiness: float  # hidden customer happiness, -1..1
    margin: float  # (revenue - cost) / revenue
    revenue: float  # per month
    drift: tuple[float, float] = (0.0, 0.0)  # per month: happiness, margin
    noise: float = 0.04
    responds: bool = False  # a playbook done for them moves them
    response: tuple[float, float] = (0.0, 0.0)  # happiness, margin, per playbook done
    tutorials: float = 1.0  # share of the plan's tutorials they complete
    late_share: float = 0.1  # how often the team is late on this account's tasks
    walkaway: bool = False  # leaves mid-term after two unhappy check-ins in a row


PERSONAS: dict[str, Persona] = {
    p.key: p
    for p in [
        Persona(
            "champion",
            "gets value fast and says so",
            "happy_profitable",
            0.6,
            0.45,
            12000,
            responds=True,
            response=(0.05, 0.02),
        ),
        Persona(
            "fading_champion",
            "starts happy, drifts away unless someone calls",
            "happy_profitable",
            0.45,
            0.4,
            9000,
            drift=(-0.12, 0.0),
            responds=True,
            response=(0.4, 0.0),
            late_share=0.2,
        ),
        Persona(
            "demanding_enterprise",
            "profitable, expectations misaligned; listens",
            "unhappy_profitable",
            -0.35,
            0.5,
            25000,
            responds=True,
            response=(0.35, 0.0),
            tutorials=0.5,
        ),
        Persona(
            "skeptic",
            "profitable, unhappy, and stays that way",
            "unhappy_profitable",
            -0.4,
            0.4,
            15000,
            drift=(-0.03, 0.0),
            tutorials=0.5,
            late_share=0.25,
        ),
        Persona(
            "quiet_whale",
            "very profitable, neutral: a business risk",
            "neutral",
            0.0,
            0.65,
            30000,
            responds=True,
            response=(0.3, 0.0),
        ),
        Persona(
            "high_touch_fan",
            "happy but costly to serve; a pricing review helps",
            "happy_unprofitable",
            0.5,
            -0.25,
            4000,
            responds=True,
            response=(0.0, 0.35),
        ),
        Persona(
            "discount_darling",
            "happy on a discount that never ends",
            "happy_unprofitable",
            0.35,
            -0.3,
            3000,
            drift=(0.0, -0.02),
        ),
        Persona(
            "struggling_startup",
            "unhappy and unprofitable; recoverable",
            "unhappy_unprofitable",
            -0.3,
            -0.2,
            2500,
            responds=True,
            response=(0.3, 0.2),
            tutorials=0.5,
            late_share=0.2,
        ),
        Persona(
            "walkaway",
            "angry from the start; leaves when it can",
            "unhappy_unprofitable",
            -0.6,
            -0.3,
            2000,
            drift=(-0.05, 0.0),
            tutorials=0.0,
            late_share=0.3,
            walkaway=True,
        ),
    ]
}

# Any four in a row cover the four quadrants, so even a small cohort is spread over them.
CYCLE = [
    "champion", "demanding_enterprise", "high_touch_fan", "struggling_startup",
    "fading_champion", "skeptic", "discount_darling", "walkaway",
    "champion", "quiet_whale", "high_touch_fan", "struggling_startup",
]  # fmt: skip

GOALS: list[dict[str, Any]] = [
    {
        "key": "active_users",
        "metric": "weekly active users",
        "unit": "users",
        "baseline": 10,
        "target": 60,
        "direction": "increase",
    },
    {
        "key": "deals_tracked",
        "metric": "deals tracked in the product each month",
        "unit": "deals",
        "baseline": 20,
        "target": 200,
        "direction": "increase",
    },
    {
        "key": "report_hours",
        "metric": "hours to build the monthly board report",
        "unit": "hours",
        "baseline": 16,
        "target": 2,
        "direction": "decrease",
    },
    {
        "key": "self_served",
        "metric": "share of tickets solved by self-service",
        "unit": "%",
        "baseline": 10,
        "target": 50,
        "direction": "increase",
    },
]
COMPANIES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Vandelay",
    "Pied Piper",
]


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator of its own per (seed, parts): str seeds are hashed with SHA-512."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


@dataclass
class Account:
    """One synthetic customer and what the simulator knows (and hides) about it."""

    index: int
    persona: Persona
    signup: SignUp
    happiness: float
    margin: float
    goals: list[dict[str, Any]]
    usage: float = 100.0
    unhappy_months: int = 0
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

    def company_axis(self, target_margin: float) -> float:
        return clamp(0.5 * self.margin / target_margin, -1, 1)


def make_cohort(seed: int, size: int, prefix: str) -> list[Account]:
    """`size` customers with ids `<prefix>-0000`..., personas spread over the quadrants."""
    offset = rng_for(seed, "cohort").randrange(len(CYCLE))
    accounts = []
    for i in range(size):
        persona = PERSONAS[CYCLE[(offset + i) % len(CYCLE)]]
        rng = rng_for(seed, "account", i)
        company = f"{rng.choice(COMPANIES)} {persona.key.replace('_', ' ').title()} {i}"
        signup = SignUp(
            company=company,
            contact_name=f"Contact {i}",
            email=f"contact{i}@{prefix}.simulated.test",
            external_id=f"{prefix}-{i:04d}",
            owner="sam.manager",
        )
        goals = rng.sample(GOALS, 2 if persona.revenue >= 10000 else 1)
        accounts.append(Account(i, persona, signup, persona.happiness, persona.margin, goals))
    return accounts


def drift(account: Account, seed: int, month: int) -> None:
    """The month's change of the hidden state: the persona's drift plus noise."""
    rng = rng_for(seed, account.key, "drift", month)
    dh, dm = account.persona.drift
    account.happiness = clamp(
        account.happiness + dh + rng.gauss(0, account.persona.noise), -0.95, 0.95
    )
    account.margin = clamp(account.margin + dm + rng.gauss(0, account.persona.noise / 2), -0.9, 0.9)


def respond_to_playbook(account: Account, situation: str) -> None:
    account.playbooks_done.append(situation)
    if account.persona.responds:
        dh, dm = account.persona.response
        account.happiness = clamp(account.happiness + dh, -0.95, 0.95)
        account.margin = clamp(account.margin + dm, -0.9, 0.9)


def goal_value(goal: dict[str, Any], account: Account, day: float) -> float:
    """A measurement that puts the goal component of the score near the hidden
    happiness: on-track scores +0.5, so progress = expected + (happiness - 0.5) / 2."""
    assert account.plan_start_day is not None
    span = max(account.target_day - account.plan_start_day, 1.0)
    expected = clamp((day - account.plan_start_day) / span, 0, 1)
    progress = clamp(expected + (account.happiness - 0.5) / 2, -0.5, 1.5)
    return round(goal["baseline"] + progress * (goal["target"] - goal["baseline"]), 2)


def monthly_signals(account: Account, seed: int, month: int, day: float) -> dict[str, Any]:
    """The month's figures: kind -> value, plus goal key -> value under 'goals'."""
    rng = rng_for(seed, account.key, "signals", month)
    h = account.happiness
    account.usage = max(1.0, account.usage * (1 + 0.2 * h + rng.gauss(0, 0.02)))
    revenue = account.persona.revenue * (1 + rng.gauss(0, 0.02))
    figures: dict[str, Any] = {
        "nps": round(clamp(7 + 3 * h + rng.gauss(0, 0.5), 0, 10)),
        "csat": round(clamp(3 + 2 * h + rng.gauss(0, 0.3), 1, 5), 1),
        "usage": round(account.usage, 1),
        "fcr": round(clamp(0.7 + 0.3 * h + rng.gauss(0, 0.03), 0, 1), 3),
        "tickets": max(0, round(12 - 8 * h + rng.gauss(0, 2))),
        "revenue": round(revenue, 2),
        "cost": round(max(0.0, revenue * (1 - account.margin)), 2),
        "goals": {},
    }
    if account.plan_start_day is not None:
        figures["goals"] = {g["key"]: goal_value(g, account, day) for g in account.goals}
    return figures


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


def true_quadrant(account: Account, target_margin: float, band: float = 0.1) -> str:
    x, y = account.happiness, account.company_axis(target_margin)
    if abs(x) < band or abs(y) < band:
        return "neutral"
    return f"{'happy' if x > 0 else 'unhappy'}_{'profitable' if y > 0 else 'unprofitable'}"


def manager_rating(account: Account, seed: int, task_key: str, target_margin: float) -> str:
    """Managers mostly see the account as it is; one in six is too optimistic."""
    rng = rng_for(seed, task_key, "rating")
    if rng.random() < 1 / 6:
        return "happy_profitable"
    seen = true_quadrant(account, target_margin)
    return seen if seen != "neutral" else "happy_profitable"


def renewal_decision(account: Account, seed: int, task_key: str) -> tuple[RenewalOutcome, str]:
    """The customer's answer at renewal: unhappy customers mostly leave, with a reason."""
    rng = rng_for(seed, task_key, "renewal")
    h, margin = account.happiness, account.margin
    if account.let_go:
        return RenewalOutcome.churned, "We decided to stop investing in the account (let go)"
    if h < -0.25:
        if rng.random() < 0.85:
            return RenewalOutcome.churned, "Did not reach their goals; moving to a competitor"
        return RenewalOutcome.downgraded, "Stays on a smaller plan while they reconsider"
    if h < 0.05:
        if rng.random() < 0.35:
            return RenewalOutcome.churned, "Not convinced of the value for the price"
        return RenewalOutcome.renewed, "Renewed, asking for a closer look at their goals"
    if margin < 0:
        return RenewalOutcome.renewed, "Renewed at a revised price"
    if h > 0.4 and rng.random() < 0.4:
        return RenewalOutcome.expanded, "Rolling out to more teams"
    return RenewalOutcome.renewed, "On track against their goals"
