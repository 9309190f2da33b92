"""The success team: the people who own accounts and do the work (DOMAIN.md §4).

A staff member is known by their email address: accounts name their manager and rep
by it, tasks their assignee, and staff mail goes to it. API tokens belong to a staff
member and take their role from them, so deactivating a person shuts all their doors.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

from models.roles import Role
from models.tables import _when, utcnow


class Staff(SQLModel, table=True):
    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str = Field(unique=True, max_length=320)
    role: str = Field(index=True)
    active: bool = Field(default=True, index=True)
    created_at: datetime = _when(default_factory=utcnow)


class StaffPublic(BaseModel):
    """A staff member as the API, the CLI and the dashboard show them."""

    id: int
    name: str
    email: str
    role: Role
    active: bool
    open_accounts: int = 0  # accounts not churned that they manage or are rep on


class Assignment(BaseModel):
    """An account's owners after a reassignment, and the tasks that moved with them."""

    customer_id: str
    manager: str | None
    rep: str | None
    tasks_moved: list[str]
