"""A simulation run's records: a throwaway SQLite database of its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from db.engine import make_engine
from settings import Settings


def records_engine(settings: Settings) -> Engine:
    """The run's records database. Nothing in it has to survive a power cut (a cut run
    is run again), so a commit does not wait for the disk: with SQLite's default, each
    commit syncs its log to disk, and holds the write lock while it does."""
    engine = make_engine(settings.resolved_database_url)

    @event.listens_for(engine, "connect")
    def _unsynced(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA synchronous=OFF")

    return engine
