"""The success quadrant (DOMAIN.md §3), as pure code: same inputs, same assessment.

Each axis is a score in [-1, 1] with zero as the neutral point. Customer happiness is a
weighted mean of the components measured (weights renormalise over what was measured);
it is 'unknown' only when nothing customer-side was. Company happiness is the margin
against the plan's target, from the recorded cost or, without one, the plan's estimate
of the cost to serve. Every assessment also carries its churn risk (models/scoring/risk).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from models.plan import ScoringSettings
from models.scoring.components import CustomerSide, goal_progress, per_month
from models.scoring.risk import churn_risk
from models.signals import ACTIVE_USERS, STANDING, Observation, SignalKind
from models.success_plan import SuccessPlan


class Quadrant(StrEnum):
    happy_profitable = "happy_profitable"  # customer success
    unhappy_profitable = "unhappy_profitable"  # work to keep: flight risk
    happy_unprofitable = "happy_unprofitable"  # work to keep: service delivery / pricing
    unhappy_unprofitable = "unhappy_unprofitable"  # assess: recover or let go
    neutral = "neutral"  # on an axis' neutral band
    unknown = "unknown"  # too little data to say


class Risk(StrEnum):
    neutral_high_profit = "neutral_high_profit"  # "a business risk" (000)


UNHAPPY = frozenset({Quadrant.unhappy_profitable, Quadrant.unhappy_unprofitable})
# Components that move the customer axis but cannot place it alone: a flat MRR says
# nothing of how the customer feels, and read alone it would call every billing-only
# account neutral (and, profitable, a "neutral but highly profitable" risk).
BILLING_ONLY = frozenset({"revenue_movement"})


class Explained(BaseModel):
    """One component as a person reads it: the figure, its score and what it weighed."""

    component: str
    figure: float | None = Field(description="the raw figure it was scored from")
    score: float = Field(description="-1..1")
    weight: float | None = Field(description="its share of its axis (None: not weighed)")
    estimated: bool = False


class Assessment(BaseModel):
    """One scoring of the account, with everything needed to explain it."""

    assessed_at: datetime
    customer_score: float | None
    company_score: float | None
    quadrant: Quadrant
    level: float | None = Field(description="position along the diagonal, -1..1")
    trend: float | None = Field(default=None, description="level change since the previous one")
    previous_quadrant: Quadrant | None = None
    risks: list[Risk] = Field(default_factory=list)
    components: dict[str, float] = Field(default_factory=dict, description="axis inputs, -1..1")
    inputs: dict[str, float] = Field(default_factory=dict, description="raw figures used")
    missing: list[str] = Field(default_factory=list)
    estimated: list[str] = Field(default_factory=list, description="inputs estimated, e.g. cost")
    explanation: list[Explained] = Field(default_factory=list)
    goal_progress: dict[str, float] = Field(default_factory=dict)
    churn_risk: float | None = Field(default=None, description="P(churn within the horizon)")
    horizon_days: int | None = None
    at_risk: bool = False

    @property
    def moved(self) -> bool:
        return self.previous_quadrant is not None and self.previous_quadrant != self.quadrant


class PreviousAssessment(BaseModel):
    """What the next assessment needs of the last one: enough to compute the trend."""

    quadrant: Quadrant
    level: float | None


# The raw figure each component is scored from, for the explanation.
FIGURES = {
    "nps": "nps",
    "csat": "csat",
    "goal_progress": "goal_progress_vs_expected",
    "usage_trend": "usage_change",
    "support": "fcr",
    "usage_peers": "usage_percentile",
    "breadth": "breadth",
    "utilisation": "utilisation",
    "revenue_movement": "mrr_change",
    "support_load": "tickets_per_user_month",
    "margin": "margin",
}


def _company_score(
    window: list[Observation],
    settings: ScoringSettings,
    inputs: dict[str, float],
    estimated: list[str],
) -> float | None:
    """Margin per month: revenue (or the latest MRR) against the recorded cost, or
    without one the plan's cost-to-serve estimate. Each is a monthly rate over the time
    its reports cover, so a month's revenue meets a month's cost."""

    def reports(kind: SignalKind) -> list[Observation]:
        return [o for o in window if o.kind is kind]

    def monthly(kind: SignalKind) -> float:
        found = reports(kind)
        return per_month(found, settings.window_days) if found else 0.0

    mrr = sorted(reports(SignalKind.mrr), key=lambda o: o.observed_at)
    if reports(SignalKind.revenue):
        inputs["revenue"] = monthly(SignalKind.revenue)
    elif mrr:
        inputs["revenue"] = mrr[-1].value
        estimated.append("revenue")
    else:
        return None
    if reports(SignalKind.cost):
        inputs["cost"] = monthly(SignalKind.cost)
    else:
        c = settings.cost
        inputs["cost"] = (
            c.per_account_monthly
            + c.per_ticket * monthly(SignalKind.tickets)
            + c.per_success_hour * monthly(SignalKind.success_hours)
        )
        estimated.append("cost")
    if inputs["revenue"] <= 0:
        return -1.0
    margin = (inputs["revenue"] - inputs["cost"]) / inputs["revenue"]
    inputs["margin"] = margin
    # Break-even is the origin; the plan's target margin scores +0.5.
    return max(-1.0, min(1.0, 0.5 * margin / settings.target_margin))


def _quadrant(x: float | None, y: float | None, band: float) -> Quadrant:
    if x is None or y is None:
        return Quadrant.unknown
    if abs(x) < band or abs(y) < band:
        return Quadrant.neutral
    happy = "happy" if x > 0 else "unhappy"
    profitable = "profitable" if y > 0 else "unprofitable"
    return Quadrant(f"{happy}_{profitable}")


def _explain(
    components: dict[str, float],
    shares: dict[str, float],
    inputs: dict[str, float],
    estimated: list[str],
) -> list[Explained]:
    def figure(name: str) -> float | None:
        # The NPS from contacts' answers is their net score; from the account's, the mean.
        key = "net_promoter_score" if name == "nps" and "net_promoter_score" in inputs else None
        key = key or FIGURES[name]
        return round(inputs[key], 4) if key in inputs else None

    return [
        Explained(
            component=name,
            figure=figure(name),
            score=round(score, 4),
            weight=round(shares[name], 4) if name in shares else None,
            estimated=name == "margin" and bool(estimated),
        )
        for name, score in components.items()
    ]


def _still_standing(observations: list[Observation], since: datetime) -> list[Observation]:
    """Per standing kind (seats, MRR), its latest reading from before the window: it
    holds inside the window until a later reading replaces it."""
    found = [
        o
        for o in observations
        if o.kind in STANDING and o.observed_at <= since and math.isfinite(o.value)
    ]
    before = {o.kind: o for o in sorted(found, key=lambda o: o.observed_at)}  # later wins
    return list(before.values())


def assess(
    observations: list[Observation],
    settings: ScoringSettings,
    as_of: datetime,
    success_plan: SuccessPlan | None = None,
    plan_started: datetime | None = None,
    previous: PreviousAssessment | None = None,
    peers: dict[str, list[float]] | None = None,
) -> Assessment:
    """Score the account from the signals inside the plan's window; `peers` are the
    recent daily usage rates of the accounts on the same plan (models/scoring/usage)."""
    since = as_of - timedelta(days=settings.window_days)
    usage_since = as_of - timedelta(days=settings.lookback_days)

    listed = set(settings.usage.metrics) | {ACTIVE_USERS}

    def inside(o: Observation) -> bool:
        start = usage_since if o.kind is SignalKind.usage else since
        if o.kind is SignalKind.usage and settings.usage.metrics and o.metric_name not in listed:
            return False  # recorded, but not one the plan scores
        # A non-finite figure is no measurement: it would otherwise clip to a perfect score.
        return start < o.observed_at <= as_of and math.isfinite(o.value)

    # The same reading sent twice (a re-run export, a retried request without a client
    # id) counts once: summed, it would double a month's tickets, revenue or cost. Two
    # the sender told apart by their ids (two invoices of one amount) stay two.
    readings = {
        (
            o.kind,
            o.value,
            o.observed_at,
            o.goal_key,
            o.metric,
            o.period_start,
            o.contact,
            o.client_id,
        ): o
        for o in observations
        if inside(o)
    }
    window = list(readings.values()) + _still_standing(observations, since)
    inputs: dict[str, float] = {}
    side = CustomerSide(window, settings, as_of, inputs)
    side.said(success_plan, plan_started)
    side.did(peers)
    components = side.components
    weights = settings.weights.model_dump()
    present = {name: weights[name] for name in components if weights[name] > 0}
    customer: float | None = None
    shares: dict[str, float] = {}
    heard = not present.keys() <= BILLING_ONLY
    if heard and len(present) >= settings.min_customer_signals:
        total = sum(present.values())
        shares = {name: w / total for name, w in present.items()}
        customer = round(sum(components[n] * s for n, s in shares.items()), 4)
    estimated: list[str] = []
    company = _company_score(window, settings, inputs, estimated)
    if company is not None:
        company = round(company, 4)
        components["margin"] = company
    missing = [name for name, weight in weights.items() if weight > 0 and name not in components]
    if company is None:
        missing.append("margin")
    quadrant = _quadrant(customer, company, settings.neutral_band)
    level = None if customer is None or company is None else round((customer + company) / 2, 4)
    risks = []
    neutral_customer = customer is not None and abs(customer) < settings.neutral_band
    if neutral_customer and company is not None and company >= settings.high_profit:
        risks.append(Risk.neutral_high_profit)
    trend = None
    if previous is not None and previous.level is not None and level is not None:
        trend = round(level - previous.level, 4)
    rounded = {k: round(v, 4) for k, v in components.items()}
    risk = None
    if customer is not None or company is not None:
        risk = round(churn_risk(settings.risk, rounded, customer, company), 4)
    if settings.risk.at_risk == "churn_risk":
        at_risk = risk is not None and risk > settings.risk.threshold
    else:
        # Unhappy customers are a flight risk whatever they are worth to us (000).
        at_risk = bool(risks) or quadrant in UNHAPPY
    return Assessment(
        assessed_at=as_of,
        customer_score=customer,
        company_score=company,
        quadrant=quadrant,
        level=level,
        trend=trend,
        previous_quadrant=previous.quadrant if previous else None,
        risks=risks,
        components=rounded,
        inputs={k: round(v, 4) for k, v in inputs.items() if math.isfinite(v)},
        missing=missing,
        estimated=estimated,
        explanation=_explain(components, shares, inputs, estimated),
        goal_progress=goal_progress(success_plan, window),
        churn_risk=risk,
        horizon_days=settings.risk.horizon_days,
        at_risk=at_risk,
    )
