"""Product events in (Segment's HTTP tracking API): the write keys they come with, the
raw events for a few weeks, and what they roll up into for good: per-account, per-metric
daily counts (distinct active users among them), which scoring reads as usage."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from models.signals import ACTIVE_USERS as ACTIVE_USERS  # distinct users active on a day
from models.tables import _when, utcnow


class EventSource(SQLModel, table=True):
    """A write key: one per sending application or pipeline. Only its SHA-256 is kept."""

    __tablename__ = "event_source"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    key_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=12)
    created_at: datetime = _when(default_factory=utcnow)
    revoked_at: datetime | None = _when(default=None, nullable=True)


class ProductEvent(SQLModel, table=True):
    """One received call (track, identify, group, page), as sent, for `retention` days.
    `customer_id` is empty while the account it names is unknown: such an event waits,
    listed, until the account exists, and is then applied."""

    __tablename__ = "product_event"
    __table_args__ = (
        # The events waiting for an account, or for a user to join one, are found when
        # it appears; only they are indexed (partial indexes), not every event stored.
        Index(
            "ix_product_event_waiting_group_id",
            "group_id",
            postgresql_where=text("customer_id IS NULL"),
            sqlite_where=text("customer_id IS NULL"),
        ),
        Index(
            "ix_product_event_waiting_user_key",
            "user_key",
            postgresql_where=text("customer_id IS NULL"),
            sqlite_where=text("customer_id IS NULL"),
        ),
        Index("ix_product_event_received_at", "received_at"),  # pruning
    )

    # 64-bit on PostgreSQL: a busy product sends billions over the years; SQLite's
    # INTEGER PRIMARY KEY is 64-bit already (and must be spelled so to count up).
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    message_id: str = Field(unique=True, max_length=200)
    # No foreign keys on the tables written per event (here, the rollup and the active
    # users): on PostgreSQL each checked row locks its parent row, and concurrent
    # batches share those locks on the same few accounts and the one source (multixacts
    # on every row). Accounts and sources are never deleted; ingestion writes only ids
    # it has just read.
    source_id: int
    type: str
    event: str | None = None  # a track's event name, a page's name
    user_key: str | None = None  # userId, else anonymousId
    group_id: str | None = None  # the account as the sender named it
    customer_id: str | None = None
    occurred_at: datetime = _when()
    received_at: datetime = _when(default_factory=utcnow)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the call, as JSON


class UserGroup(SQLModel, table=True):
    """Which account a user belongs to, from their latest `group` call: a track without
    a group is attributed through it."""

    __tablename__ = "event_user_group"

    user_key: str = Field(primary_key=True, max_length=200)
    group_id: str
    updated_at: datetime = _when(default_factory=utcnow)


class UsageDaily(SQLModel, table=True):
    """The rollup: how many times an account did a metric on a day (UTC), and how many
    distinct users were active that day (metric `active_users`)."""

    __tablename__ = "usage_daily"

    customer_id: str = Field(primary_key=True)
    metric: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    count: int = 0


class ActiveUserDay(SQLModel, table=True):
    """Who was active on a day, so that `active_users` counts each user once."""

    __tablename__ = "active_user_day"

    customer_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    user_key: str = Field(primary_key=True)


class AccountTraits(SQLModel, table=True):
    """What the account's latest `group` call said of its MRR, plan and seats."""

    __tablename__ = "account_traits"

    customer_id: str = Field(foreign_key="customer.id", primary_key=True)
    mrr: float | None = None
    plan: str | None = None
    seats: int | None = None
    updated_at: datetime = _when(default_factory=utcnow)


class TutorialCompletion(SQLModel, table=True):
    """A tutorial an event completed; `told_at` once the lifecycle has been told."""

    __tablename__ = "tutorial_completion"
    __table_args__ = (Index("ix_tutorial_completion_told_at", "told_at"),)

    customer_id: str = Field(foreign_key="customer.id", primary_key=True)
    tutorial: str = Field(primary_key=True)
    message_id: str
    completed_at: datetime = _when()
    told_at: datetime | None = _when(default=None, nullable=True)
    outcome: str | None = None
