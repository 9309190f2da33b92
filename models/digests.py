"""What the manager digest workflow and its activities exchange (pydantic only: the
workflow sandbox never loads the table in models/digest_records.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class DigestPeriod(BaseModel):
    """The period a digest covers; its end is the schedule's time for this run."""

    start: datetime
    end: datetime


class DigestRequest(BaseModel):
    manager: str
    period: DigestPeriod


class DigestReceipt(BaseModel):
    manager: str
    key: str
    accounts: int
    already_sent: bool
