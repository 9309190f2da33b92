"""Signals: measured inputs to an assessment (DOMAIN.md §5).

A usage signal names its metric (an event type or feature such as `reports_shared`, or
`active_users`; without a name it is the metric `usage`) and, when its value is a count
over a period, the period's start: scoring divides the count by the period's days, so a
February and a March of the same daily rate compare equal, and so does a partial month.
A usage signal without a period is a level read at `observed_at` (a gauge) and is taken
as it is. `active_users` is always a level: the distinct users over the period, not a
count to divide.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

USAGE = "usage"  # the metric of a usage signal that names none
ACTIVE_USERS = "active_users"  # distinct active users: a level, never divided by days
METRIC_PATTERN = r"^[a-z0-9][a-z0-9_.:-]*$"
# No figure an account has (MRR, tickets, users, hours) comes near a trillion; a value
# beyond it is a unit or typing mistake, and sums and ratios of a few such values
# overflow to inf or NaN in scoring and forecasts.
MAX_MAGNITUDE = 1e12
# A measured figure as Tandem takes it in: finite, and within MAX_MAGNITUDE.
Figure = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]


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
    seats = "seats"  # seats (licences) the account has bought, at observed_at
    mrr = "mrr"  # monthly recurring revenue at observed_at: a drop is a downgrade
    success_hours = "success_hours"  # success-team time spent on the account in the period


# Kinds whose value stands until a later reading replaces it: teams record seats and
# MRR when they change (a contract, an upgrade), not every month, so the latest reading
# before an assessment's window still holds inside it.
STANDING = frozenset({SignalKind.seats, SignalKind.mrr})
# Kinds whose value is an amount over a period (so period_start makes sense).
PERIODIC = frozenset(
    {SignalKind.usage, SignalKind.tickets, SignalKind.revenue, SignalKind.cost}
    | {SignalKind.success_hours}
)


_RANGES: dict[SignalKind, tuple[float, float | None]] = {
    SignalKind.nps: (0, 10),
    SignalKind.csat: (1, 5),
    SignalKind.fcr: (0, 1),
    SignalKind.usage: (0, None),
    SignalKind.tickets: (0, None),
    SignalKind.aht: (0, None),
    SignalKind.revenue: (0, None),
    SignalKind.cost: (0, None),
    SignalKind.seats: (0, None),
    SignalKind.mrr: (0, None),
    SignalKind.success_hours: (0, None),
}


class Observation(BaseModel):
    """One measured value, as scoring reads it."""

    kind: SignalKind
    value: float
    observed_at: datetime
    goal_key: str | None = None
    metric: str | None = Field(
        default=None, max_length=100, description="usage only: event type, feature or active_users"
    )
    period_start: datetime | None = Field(
        default=None, description="start of the period a count covers (ends at observed_at)"
    )
    contact: str | None = Field(
        default=None,
        max_length=320,
        description="survey answers (nps, csat): the contact who answered, by their email; "
        "the account's NPS counts each active contact's latest answer",
    )
    client_id: str | None = Field(
        default=None,
        max_length=200,
        description="the sender's own id: two readings with different ids are two, however alike",
    )

    @property
    def metric_name(self) -> str:
        return self.metric or USAGE

    @property
    def period_days(self) -> float | None:
        """Days the value covers, or None for a level read at one moment."""
        if self.period_start is None:
            return None
        return (self.observed_at - self.period_start).total_seconds() / 86_400


class StoredSignal(Protocol):
    """A stored signal row's fields that scoring reads (models.tables.SignalRecord)."""

    kind: str
    value: float
    observed_at: datetime
    goal_key: str | None
    metric: str | None
    period_start: datetime | None
    contact_email: str | None
    client_id: str | None


def observation(row: StoredSignal) -> Observation:
    return Observation(
        kind=SignalKind(row.kind),
        value=row.value,
        observed_at=row.observed_at,
        goal_key=row.goal_key,
        metric=row.metric,
        period_start=row.period_start,
        contact=row.contact_email,
        client_id=row.client_id,
    )


YEARS = range(1970, 3000)


def _zoned(value: datetime) -> datetime:
    """A time without a zone is a guess at the sender's clock (hours off either way), so
    ingestion asks for one rather than guess; the CLI reads its own naive input as UTC.
    A year outside YEARS is a typo or a placeholder (0001-01-01), and one at the edge of
    the calendar cannot even be turned into UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "timezone_aware",
            "a time zone is required: end the time with Z (UTC) or an offset such as "
            "+00:00, e.g. 2026-12-01T00:00:00Z",
        )
    if value.year not in YEARS:
        raise PydanticCustomError(
            "measurement_year",
            "a measurement's year is from {first} to {last}, got {year}",
            {"first": YEARS.start, "last": YEARS.stop - 1, "year": value.year},
        )
    return value


ZonedDatetime = Annotated[datetime, AfterValidator(_zoned)]


# The fields that go only with some kinds of signal, and how a refusal names those kinds.
_ONLY_WITH: dict[str, tuple[frozenset[SignalKind], str]] = {
    "goal_key": (frozenset({SignalKind.goal}), "kind 'goal'"),
    "metric": (frozenset({SignalKind.usage}), "kind 'usage'"),
    "contact": (frozenset({SignalKind.nps, SignalKind.csat}), "a survey answer (nps, csat)"),
}


class SignalIn(Observation):
    """A signal as it is ingested: range-checked, zoned, optionally idempotent by client
    id. Whether it is in the future is the entry point's check (db.ingest), as only the
    outside world's signals are held to the wall clock: a simulation's are not. An
    unknown field is refused: a misspelt `periodStart` or `clientId` would otherwise be
    dropped, and the signal stored as something else (a count as a level, a resend twice)."""

    model_config = ConfigDict(extra="forbid")

    value: Figure
    observed_at: ZonedDatetime
    period_start: ZonedDatetime | None = Field(
        default=None, description="start of the period a count covers (ends at observed_at)"
    )
    customer_id: str = Field(min_length=1)
    source: str = "cli"
    client_id: str | None = Field(default=None, max_length=200)

    # Each check that reads two fields is the later field's own (the kind and the times
    # are validated first): a refusal then names the field at fault, `signals.3.value`,
    # not the whole item.
    @field_validator("value")
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        kind = info.data.get("kind")
        if kind is None or kind is SignalKind.goal:
            return value
        low, high = _RANGES[kind]
        if value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise ValueError(f"{kind.value} must be {bound}, got {value:g}")
        return value

    @field_validator("goal_key", "metric", "contact")
    @classmethod
    def _only_with_its_kinds(cls, given: str | None, info: ValidationInfo) -> str | None:
        kinds, which = _ONLY_WITH[info.field_name or ""]
        kind = info.data.get("kind")
        if given and kind is not None and kind not in kinds:
            raise ValueError(f"{info.field_name} only goes with {which}, not {kind.value!r}")
        return given

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, metric: str | None) -> str | None:
        if metric is not None and not re.match(METRIC_PATTERN, metric):
            raise ValueError(
                f"{metric!r} is not a metric name (lower-case letters, digits and _ . : - , "
                "starting with a letter or digit)"
            )
        return metric

    @field_validator("period_start")
    @classmethod
    def _period_before_its_end(
        cls, start: datetime | None, info: ValidationInfo
    ) -> datetime | None:
        kind, end = info.data.get("kind"), info.data.get("observed_at")
        if start is None:
            return start
        if kind is not None and kind not in PERIODIC:
            raise ValueError(
                f"period_start only goes with an amount over a period "
                f"({', '.join(sorted(k.value for k in PERIODIC))}), not {kind.value!r}"
            )
        if end is not None and start >= end:
            raise ValueError("period_start must be before observed_at (the period's end)")
        return start

    @model_validator(mode="after")
    def _goal_named(self) -> SignalIn:
        if self.kind is SignalKind.goal and not self.goal_key:
            raise ValueError("a goal signal needs goal_key (which of the customer's goals)")
        return self


class SurveyAnswer(BaseModel):
    """A one-click survey answer, told to the lifecycle after it is recorded."""

    kind: SignalKind
    value: float
    survey: str
    contact: str | None = None  # who answered, when the link named them


def readable(value: float | None) -> str:
    """A measured value as people read it, in emails and on pages: 2.0 as 2, 1500000 as
    1,500,000 (where %g would show 1.5e+06), two decimals at most, None as n/a."""
    if value is None:
        return "n/a"
    return f"{value:,.2f}".rstrip("0").rstrip(".")
