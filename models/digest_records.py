"""Manager digests: what each manager is sent once per period, kept as sent.

The row's key is the manager and the period: a digest workflow retried after a worker
died mid-way finds the digest stored (and sent, or not yet) instead of sending twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.tables import _when, utcnow


class ManagerDigest(SQLModel, table=True):
    __tablename__ = "manager_digest"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=240)  # manager + period
    manager: str = Field(index=True)
    period_start: datetime = _when()
    period_end: datetime = _when()
    subject: str
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending")  # pending, sent
    created_at: datetime = _when(default_factory=utcnow)
    sent_at: datetime | None = _when(default=None, nullable=True)
