"""SQLite connections whose writers queue on a lock of the process's own.

SQLite lets one connection write at a time. A connection that finds the file locked
waits in SQLite's busy handler, which sleeps and tries again in steps growing to
100 ms, while Tandem's write transactions last a few milliseconds: writers of one
process queued there (the worker's activity threads, a check-in day's many) left the
lock idle most of the time they waited, and woke again and again to find it taken.
Here they queue on a lock per database file instead, which goes to the next writer as
soon as the last one commits. Writers in other processes (the API beside the worker)
still meet at SQLite's own lock, and wait in its busy handler as before.

A connection takes the lock at its first write (SQLite's driver begins the transaction
there too: the reads before it hold nothing up) and gives it back when the transaction
ends: commit, rollback or close.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Statements that write, and so begin a transaction (DDL included: migrations write too).
_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP)\b", re.IGNORECASE)

_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def writers_lock(database: str) -> threading.Lock | None:
    """The lock the process's writers to this database file take turns on; None for an
    in-memory database, which each connection has to itself."""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    key = str(Path(database).resolve())
    with _locks_lock:
        return _locks.setdefault(key, threading.Lock())


class QueuedWriterConnection(sqlite3.Connection):
    """A sqlite3 connection that takes its process's writers' lock (`writers_lock`)
    before it writes, for as long as its transaction lasts. It waits for the lock as
    long as SQLite would wait on its own (the connection's busy timeout), and then fails
    as SQLite does: "database is locked"."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._writers = writers_lock(str(database))
        self._busy_timeout = float(kwargs.get("timeout", 5.0))
        self._writing = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:
        # Another cursor class writes past the queue, waiting on SQLite's lock instead.
        return super().cursor(factory or QueuedWriterCursor)

    # The connection's own shortcuts run their statement past the cursor's methods.
    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(
        self, sql: str, seq_of_parameters: Iterable[Sequence[Any] | Mapping[str, Any]], /
    ) -> Any:
        return self.cursor().executemany(sql, seq_of_parameters)

    def take_turn(self) -> None:
        if self._writers is None or self._writing:
            return
        if not self._writers.acquire(timeout=self._busy_timeout):
            raise sqlite3.OperationalError("database is locked")
        self._writing = True

    def end_turn(self) -> None:
        """Give the lock back once no transaction is open (after an autocommit
        statement, or when the transaction ended)."""
        if self._writing and not self.in_transaction:
            self._give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._writing:  # closed mid-transaction: SQLite rolled it back
                self._give_back()

    def __del__(self) -> None:
        if getattr(self, "_writing", False):  # dropped unclosed: SQLite rolls it back
            self._give_back()

    def _give_back(self) -> None:
        self._writing = False
        assert self._writers is not None
        self._writers.release()


class QueuedWriterCursor(sqlite3.Cursor):
    connection: QueuedWriterConnection

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (), /) -> Any:
        self._before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.end_turn()

    def executemany(
        self, sql: str, seq_of_parameters: Iterable[Sequence[Any] | Mapping[str, Any]], /
    ) -> Any:
        self._before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.end_turn()

    def _before(self, sql: str) -> None:
        if _WRITES.match(sql):
            self.connection.take_turn()
