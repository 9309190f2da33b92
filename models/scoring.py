"""The success quadrant (DOMAIN.md §3), as pure code: same inputs, same assessment.

Each axis is a score in [-1, 1] with zero as the neutral point. Customer happiness is a
weighted mean of the components present (weights renormalise over what was measured);
company happiness is the margin against the plan's target. Too little data gives
'unknown', never a guess.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from statistics import fmean

from pydantic import BaseModel, Field

from models.plan import ScoringSettings
from models.signals import Observation, SignalKind
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
    goal_progress: dict[str, float] = Field(default_factory=dict)

    @property
    def moved(self) -> bool:
        return self.previous_quadrant is not None and self.previous_quadrant != self.quadrant


class PreviousAssessment(BaseModel):
    """What the next assessment needs of the last one: enough to compute the trend."""

    quadrant: Quadrant
    level: float | None


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def _latest(observations: list[Observation], kind: SignalKind) -> list[Observation]:
    return sorted((o for o in observations if o.kind is kind), key=lambda o: o.observed_at)


def _expected_progress(as_of: datetime, started: datetime, target: datetime) -> float:
    span = (target - started).total_seconds()
    if span <= 0:
        return 1.0
    return max(0.0, min(1.0, (as_of - started).total_seconds() / span))


def goal_progress(plan: SuccessPlan | None, observations: list[Observation]) -> dict[str, float]:
    """Goal key -> share of the way from baseline to target, from the latest measurement."""
    if plan is None:
        return {}
    progress: dict[str, float] = {}
    for goal in plan.goals:
        measured = [o for o in _latest(observations, SignalKind.goal) if o.goal_key == goal.key]
        if measured:
            progress[goal.key] = round(goal.progress(measured[-1].value), 4)
    return progress


def _customer_components(
    observations: list[Observation],
    plan: SuccessPlan | None,
    plan_started: datetime | None,
    as_of: datetime,
    inputs: dict[str, float],
) -> dict[str, float]:
    components: dict[str, float] = {}
    nps = [o.value for o in _latest(observations, SignalKind.nps)]
    if nps:
        inputs["nps"] = fmean(nps)
        # 7 is the passive middle; promoters (9-10) score high, detractors (0-6) low.
        components["nps"] = _clip((inputs["nps"] - 7) / 3)
    csat = [o.value for o in _latest(observations, SignalKind.csat)]
    if csat:
        inputs["csat"] = fmean(csat)
        components["csat"] = _clip((inputs["csat"] - 3) / 2)
    progress = goal_progress(plan, observations)
    if progress and plan is not None and plan_started is not None:
        # On track against the customer's own goals scores +0.5; a quarter ahead is +1.
        on_track = []
        for goal in plan.goals:
            if goal.key in progress:
                target = datetime.combine(goal.target_date, datetime.min.time(), as_of.tzinfo)
                expected = _expected_progress(as_of, plan_started, target)
                on_track.append(progress[goal.key] - expected)
        inputs["goal_progress_vs_expected"] = fmean(on_track)
        components["goal_progress"] = _clip(0.5 + 2 * inputs["goal_progress_vs_expected"])
    usage = [o.value for o in _latest(observations, SignalKind.usage)]
    if len(usage) >= 2:
        before = fmean(usage[:-1])
        change = (usage[-1] - before) / before if before > 0 else (1.0 if usage[-1] > 0 else 0.0)
        inputs["usage_change"] = change
        components["usage_trend"] = _clip(change / 0.5)
    fcr = [o.value for o in _latest(observations, SignalKind.fcr)]
    if fcr:
        inputs["fcr"] = fmean(fcr)
        # 70 % first-contact resolution is a common industry norm: it is the zero point.
        components["support"] = _clip((inputs["fcr"] - 0.7) / 0.3)
    return components


def _company_score(
    observations: list[Observation], settings: ScoringSettings, inputs: dict[str, float]
) -> float | None:
    revenue = [o.value for o in observations if o.kind is SignalKind.revenue]
    cost = [o.value for o in observations if o.kind is SignalKind.cost]
    if not revenue or not cost:
        return None
    inputs["revenue"] = sum(revenue)
    inputs["cost"] = sum(cost)
    if inputs["revenue"] <= 0:
        return -1.0
    margin = (inputs["revenue"] - inputs["cost"]) / inputs["revenue"]
    inputs["margin"] = margin
    # Break-even is the origin; the plan's target margin scores +0.5.
    return _clip(0.5 * margin / settings.target_margin)


def _quadrant(x: float | None, y: float | None, band: float) -> Quadrant:
    if x is None or y is None:
        return Quadrant.unknown
    if abs(x) < band or abs(y) < band:
        return Quadrant.neutral
    happy = "happy" if x > 0 else "unhappy"
    profitable = "profitable" if y > 0 else "unprofitable"
    return Quadrant(f"{happy}_{profitable}")


def assess(
    observations: list[Observation],
    settings: ScoringSettings,
    as_of: datetime,
    success_plan: SuccessPlan | None = None,
    plan_started: datetime | None = None,
    previous: PreviousAssessment | None = None,
) -> Assessment:
    """Score the account from the signals inside the plan's window."""
    since = as_of - timedelta(days=settings.window_days)
    # A non-finite figure is no measurement: it would otherwise clip to a perfect score.
    window = [o for o in observations if since < o.observed_at <= as_of and math.isfinite(o.value)]
    inputs: dict[str, float] = {}
    components = _customer_components(window, success_plan, plan_started, as_of, inputs)
    weights = settings.weights.model_dump()
    present = {name: weights[name] for name in components if weights[name] > 0}
    customer: float | None = None
    if len(present) >= settings.min_customer_signals:
        total = sum(present.values())
        customer = round(sum(components[n] * w for n, w in present.items()) / total, 4)
    company = _company_score(window, settings, inputs)
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
    return Assessment(
        assessed_at=as_of,
        customer_score=customer,
        company_score=company,
        quadrant=quadrant,
        level=level,
        trend=trend,
        previous_quadrant=previous.quadrant if previous else None,
        risks=risks,
        components={k: round(v, 4) for k, v in components.items()},
        inputs={k: round(v, 4) for k, v in inputs.items() if math.isfinite(v)},
        missing=missing,
        goal_progress=goal_progress(success_plan, window),
    )
