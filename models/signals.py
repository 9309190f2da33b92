"""Signals: measured inputs to an assessment (DOMAIN.md §5)."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator


class SignalKind(StrEnum):
    nps = "nps"  # 0-10 survey answer
    csat = "csat"  # 1-5 survey answer
    usage = "usage"  # any usage figure the team tracks (e.g. weekly active users)
    tickets = "tickets"  # support tickets closed in the period
    fcr = "fcr"  # first-contact resolution rate, 0-1
    aht = "aht"  # average handle time, minutes
    revenue = "revenue"  # money received in the period
    cost = "cost"  # cost to serve in the period (support, success time, discounts)
    goal = "goal"  # a measured value of one of the customer's goals (needs goal_key)


_RANGES: dict[SignalKind, tuple[float, float | None]] = {
    SignalKind.nps: (0, 10),
    SignalKind.csat: (1, 5),
    SignalKind.fcr: (0, 1),
    SignalKind.usage: (0, None),
    SignalKind.tickets: (0, None),
    SignalKind.aht: (0, None),
    SignalKind.revenue: (0, None),
    SignalKind.cost: (0, None),
}


class Observation(BaseModel):
    """One measured value, as scoring reads it."""

    kind: SignalKind
    value: float
    observed_at: datetime
    goal_key: str | None = None


class SignalIn(Observation):
    """A signal as it is ingested: range-checked, optionally idempotent by client id."""

    customer_id: str = Field(min_length=1)
    source: str = "cli"
    client_id: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _in_range(self) -> SignalIn:
        if not math.isfinite(self.value):
            raise ValueError(f"{self.kind.value} must be a finite number, got {self.value}")
        if self.kind is SignalKind.goal:
            if not self.goal_key:
                raise ValueError("a goal signal needs goal_key (which of the customer's goals)")
            return self
        if self.goal_key:
            raise ValueError(f"goal_key only goes with kind 'goal', not {self.kind.value!r}")
        low, high = _RANGES[self.kind]
        if self.value < low or (high is not None and self.value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise ValueError(f"{self.kind.value} must be {bound}, got {self.value:g}")
        return self


class SurveyAnswer(BaseModel):
    """A one-click survey answer, told to the lifecycle after it is recorded."""

    kind: SignalKind
    value: float
    survey: str


def readable(value: float | None) -> str:
    """A measured value as people read it, in emails and on pages: 2.0 as 2, 1500000 as
    1,500,000 (where %g would show 1.5e+06), two decimals at most, None as n/a."""
    if value is None:
        return "n/a"
    return f"{value:,.2f}".rstrip("0").rstrip(".")
