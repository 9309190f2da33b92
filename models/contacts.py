"""Contacts: the people at an account (DOMAIN.md §5). An account is several people,
each with one or more roles; the champion is the one who drives adoption, and losing
them is a classic churn signal.

A contact is known at their account by their email address (compared without case).
One who leaves is kept, marked as left (or bouncing), so the account's history still
names them; only active contacts are emailed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field as ColumnField
from sqlmodel import SQLModel

from models.tables import _when, utcnow


class ContactRole(StrEnum):
    champion = "champion"  # drives adoption inside the account
    executive_sponsor = "executive_sponsor"  # signs off the spend; the renewal's audience
    admin = "admin"  # sets the product up for their people
    billing = "billing"  # pays the invoices
    user = "user"  # uses the product


class ContactStatus(StrEnum):
    active = "active"
    left = "left"  # left the account (marked by the team, or removed)
    bounced = "bounced"  # their address bounces: as good as gone


# The first contact of a sign-up: the person who signed up sets the product up and, until
# the team learns otherwise, is the one driving it.
SIGNUP_ROLES = (ContactRole.admin, ContactRole.champion)


# Whom each customer email goes to, by the roles of the account's active contacts; a
# template not named here goes to every active contact. An account without a contact in
# those roles gets it at its primary address, as before contacts existed.
TEMPLATE_ROLES: dict[str, frozenset[ContactRole]] = {
    "welcome": frozenset({ContactRole.admin, ContactRole.champion}),
    "tutorial_nudge": frozenset({ContactRole.admin, ContactRole.champion}),
    "renewal_invite": frozenset({ContactRole.executive_sponsor, ContactRole.champion}),
}


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("customer_id", "email"),
        Index("ix_contact_customer_id_status", "customer_id", "status"),
    )

    id: int | None = ColumnField(default=None, primary_key=True)
    customer_id: str = ColumnField(foreign_key="customer.id", max_length=64)
    name: str
    email: str = ColumnField(max_length=320)
    roles: list[str] = ColumnField(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = ColumnField(default=ContactStatus.active.value, max_length=16)
    source: str = ColumnField(default="api", max_length=16)  # signup, segment, api, cli, import
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)
    left_at: datetime | None = _when(default=None, nullable=True)
    # Their own opt-out of automated email (their link, or staff): the account's other
    # contacts still get it. The account-wide opt-out is Customer.unsubscribed_at.
    unsubscribed_at: datetime | None = _when(default=None, nullable=True)
    unsubscribed_by: str | None = None


class ContactPublic(BaseModel):
    """A contact as the API, the CLI and the dashboard show them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: str
    name: str
    email: str
    roles: list[ContactRole]
    status: ContactStatus
    source: str
    created_at: datetime
    left_at: datetime | None
    unsubscribed_at: datetime | None = None


class NewContact(BaseModel):
    """A contact to add (API body; the CLI builds the same)."""

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    roles: list[ContactRole] = Field(default_factory=lambda: [ContactRole.user])


class ContactChange(BaseModel):
    """What to change on a contact; fields left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    roles: list[ContactRole] | None = None
    status: ContactStatus | None = None
    unsubscribed: bool | None = Field(
        default=None, description="true: no more automated email to them; false: again"
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, mode="json")


class Bounces(BaseModel):
    """Addresses reported as bouncing (API body; the CLI builds the same)."""

    emails: list[str] = Field(min_length=1, max_length=1000)
