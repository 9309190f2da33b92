"""Outbound webhooks: endpoints, the event outbox, deliveries and their attempts.

An event is written to `webhook_event` in the same transaction as the change that causes
it (db/webhooks.py, `record_event`); the worker's dispatcher turns it into one delivery
per subscribed endpoint and starts a delivery workflow for each (workflows/delivery.py),
which logs every attempt here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.delivery import DeliveryStatus
from models.tables import _when, utcnow


class EndpointKind(StrEnum):
    webhook = "webhook"  # Standard Webhooks v1, signed
    slack = "slack"  # a Slack incoming-webhook URL: Block Kit messages


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: str = Field(primary_key=True, max_length=40)
    url: str
    kind: str = Field(default=EndpointKind.webhook.value)
    description: str = ""
    # Empty: every event type.
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(repr=False)
    # After a rotation the old secret signs too, until it expires (both signatures sent).
    previous_secret: str | None = Field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = _when(default=None, nullable=True)
    enabled: bool = Field(default=True, index=True)
    disabled_reason: str | None = None
    disabled_at: datetime | None = _when(default=None, nullable=True)
    created_at: datetime = _when(default_factory=utcnow)

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(SQLModel, table=True):
    """The outbox: one row per event, written with the change that causes it."""

    __tablename__ = "webhook_event"

    id: str = Field(primary_key=True, max_length=40)  # the webhook-id, msg_...
    # Unique: an activity retried after its commit records the event once.
    key: str = Field(unique=True, max_length=240)
    type: str = Field(index=True)
    created_at: datetime = _when(default_factory=utcnow)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # For `tandem webhooks test`: the one endpoint it goes to.
    only_endpoint_id: str | None = None
    # Set when the dispatcher has made its deliveries.
    dispatched_at: datetime | None = _when(default=None, nullable=True, index=True)


class WebhookDelivery(SQLModel, table=True):
    """One event to one endpoint; a redelivery is a new round with the same webhook-id."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", "round"),
        Index("ix_webhook_delivery_endpoint_id_id", "endpoint_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(foreign_key="webhook_event.id", index=True)
    endpoint_id: str = Field(foreign_key="webhook_endpoint.id")
    round: int = 0
    status: str = Field(default=DeliveryStatus.pending.value)
    # The exact bytes sent (and signed) on every attempt of this round.
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _when(default_factory=utcnow)
    # Set once its delivery workflow is started.
    started_at: datetime | None = _when(default=None, nullable=True, index=True)
    finished_at: datetime | None = _when(default=None, nullable=True)
    attempts: int = 0
    last_error: str | None = None


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", index=True)
    attempt: int
    at: datetime = _when(default_factory=utcnow)
    status_code: int | None = None
    duration_ms: int
    error: str | None = None


# -- read models: the API, the CLI ---------------------------------------------------------


class WebhookEndpointIn(BaseModel):
    url: str
    events: list[str] = []
    kind: EndpointKind = EndpointKind.webhook
    description: str = ""


class WebhookEndpointPublic(BaseModel):
    id: str
    url: str
    kind: EndpointKind
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    rotating_until: datetime | None

    @classmethod
    def of(cls, row: WebhookEndpoint) -> WebhookEndpointPublic:
        return cls(
            id=row.id,
            url=row.url,
            kind=EndpointKind(row.kind),
            description=row.description,
            events=row.event_types,
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            disabled_at=row.disabled_at,
            created_at=row.created_at,
            rotating_until=row.previous_secret_expires_at if row.previous_secret else None,
        )


class WebhookEndpointSecret(WebhookEndpointPublic):
    """Returned on creation and rotation only: the signing secret, `whsec_...`."""

    secret: str


class WebhookAttemptPublic(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None


class WebhookDeliveryPublic(BaseModel):
    id: int
    event_id: str
    event_type: str
    endpoint_id: str
    round: int
    status: DeliveryStatus
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None
    attempts: list[WebhookAttemptPublic]
