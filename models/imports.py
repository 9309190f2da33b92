"""Existing accounts, imported mid-term: what a lifecycle needs to pick up from today.

An imported lifecycle starts with its term's real start (in the past) and end; the
agenda skips the steps dated before the day of the import, sends no welcome, and treats
onboarding as done unless the import says otherwise.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator


class ImportedContact(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    roles: list[str] = Field(default_factory=list)


class ImportedAccount(BaseModel):
    """The term the account is in, as the system it comes from knows it."""

    term_start: datetime
    term_end: datetime
    onboarded: bool = True
    mrr: float | None = Field(default=None, ge=0)
    contacts: list[ImportedContact] = Field(default_factory=list)
    source: str = Field(default="import", description="where it came from, e.g. the file's name")

    @model_validator(mode="after")
    def _a_term(self) -> ImportedAccount:
        if self.term_end <= self.term_start:
            raise ValueError("term_end must be after term_start")
        return self
