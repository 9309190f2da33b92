"""Segment's HTTP tracking API, as payloads: the calls (track, identify, group, page, and
screen and alias, which are kept but not counted), and what Tandem answers about them.

Field names are Segment's own (`userId`, `messageId`, ...), so any Segment, RudderStack
or Jitsu client sends to Tandem unchanged.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.signals import YEARS

# Segment's limits: 32 KB a call, 500 KB a request.
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

CallType = Literal["track", "identify", "group", "page", "screen", "alias"]


class SegmentCall(BaseModel):
    """One call. Unknown fields (integrations, version, ...) are accepted and kept in the
    call's JSON as stored; the model leaves them out, which pydantic validates faster
    (about an eighth)."""

    # Some clients send numeric ids; Segment takes them as strings.
    model_config = ConfigDict(populate_by_name=True, coerce_numbers_to_str=True)

    type: CallType
    user_id: str | None = Field(default=None, alias="userId", max_length=200)
    anonymous_id: str | None = Field(default=None, alias="anonymousId", max_length=200)
    message_id: str | None = Field(default=None, alias="messageId", min_length=1, max_length=200)
    event: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    group_id: str | None = Field(default=None, alias="groupId", max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime | None = None
    sent_at: datetime | None = Field(default=None, alias="sentAt")

    @field_validator("timestamp", "sent_at")
    @classmethod
    def _utc_and_sane(cls, moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # a time without a zone is UTC, as Segment takes it
        if moment.year not in YEARS:
            # A placeholder (0001-01-01) or a typo; at the calendar's edge it could not
            # even be moved to the server's clock.
            raise ValueError(f"the year is from {YEARS.start} to {YEARS.stop - 1}")
        return moment

    @model_validator(mode="after")
    def _required(self) -> SegmentCall:
        if self.type != "alias" and not (self.user_id or self.anonymous_id):
            raise ValueError("userId or anonymousId is required")
        if self.type == "track" and not self.event:
            raise ValueError("event: a track call needs the event's name")
        if self.type == "group" and not self.group_id:
            raise ValueError("groupId: a group call needs the account's id")
        return self

    @property
    def user_key(self) -> str | None:
        return self.user_id or self.anonymous_id

    @property
    def named_group(self) -> str | None:
        """The account the call names itself: `context.groupId` (Segment's B2B
        convention for a track), else a top-level `groupId`."""
        named = self.context.get("groupId")
        if isinstance(named, (str, int)) and not isinstance(named, bool) and str(named):
            return str(named)
        return self.group_id

    @property
    def person_traits(self) -> dict[str, Any]:
        """What the call says of the person making it: an `identify`'s own traits, else
        `context.traits` (Segment's libraries send the user's traits there on a `group`,
        whose own traits describe the account)."""
        if self.type == "identify":
            return self.traits
        traits = self.context.get("traits")
        return traits if isinstance(traits, dict) else {}

    def occurred_at(self, received_at: datetime) -> datetime:
        """When it happened, by the server's clock: Segment corrects a device's clock by
        the time between the client's `sentAt` and the server's receipt. Never after
        the receipt: a device clock ahead (or a `sentAt` years behind its `timestamp`)
        would date usage into days to come."""
        if self.timestamp is None:
            return received_at
        if self.sent_at is None:
            return min(self.timestamp, received_at)
        return min(self.timestamp + (received_at - self.sent_at), received_at)


class Accepted(BaseModel):
    """Segment's answer to an accepted call or batch."""

    success: bool = True


class IngestReceipt(BaseModel):
    received: int
    added: int = Field(description="new events (a resent messageId is not added again)")
    unattributed: int = Field(description="of the new ones, for accounts not known yet")
    tutorials: int = Field(default=0, description="tutorial completions the new ones made")


class WaitingAccount(BaseModel):
    """Events waiting for an account Tandem does not know yet."""

    group_id: str | None = Field(description="the account as named; None: the user has no group")
    user_key: str | None = Field(description="set when the events name no account, only a user")
    events: int
    first_at: datetime
    last_at: datetime


class UsageDay(BaseModel):
    metric: str
    day: date
    count: int


class AccountUsage(BaseModel):
    customer_id: str
    mrr: float | None = None
    plan: str | None = None
    seats: int | None = None
    days: list[UsageDay]


class SourceView(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class NewSource(SourceView):
    write_key: str = Field(description="shown this once; only its hash is stored")
