"""One engine per process, SQLite by default and PostgreSQL through DATABASE_URL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, Insert, Table, event, insert, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, create_engine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

from db.sqlite import QueuedWriterConnection
from models import digest_records, product_events, tables, webhooks  # noqa: F401  (registers the tables on SQLModel.metadata)

T = TypeVar("T")

# Hosted PostgreSQL services hand out `postgres://` and `postgresql://` URLs; SQLAlchemy
# would read those as psycopg2 (or refuse `postgres`), and Tandem ships psycopg 3.
_POSTGRES_SCHEMES = {"postgres", "postgresql"}


def database_url(url: str | URL) -> URL:
    """The URL as SQLAlchemy should see it: PostgreSQL always through psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_SCHEMES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


# Connections opening a new file together race to switch it to WAL, and SQLite answers
# the losers "database is locked" at once instead of waiting on the busy timeout.
@retry(
    retry=retry_if_exception(_locked),
    stop=stop_after_delay(30),
    wait=wait_random(0.005, 0.05),
    reraise=True,
)
def _use_wal(connection: Any) -> None:
    connection.execute("PRAGMA journal_mode=WAL")


def make_engine(url: str | URL) -> Engine:
    # The URL object goes to create_engine as is: rendering it back to a string would
    # need care with passwords and percent-escapes.
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                # The process's writers queue on a lock of its own (db/sqlite.py).
                "factory": QueuedWriterConnection,
            },
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            # WAL lets the CLI read while the worker writes; foreign keys are off by default.
            _use_wal(connection)
            connection.execute("PRAGMA foreign_keys=ON")

        return engine

    # The worker runs up to 16 activities at once, each with its own session: the pool
    # lets them all connect instead of queueing behind SQLAlchemy's default of 5 + 10.
    engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.get_backend_name() == "postgresql":

        @event.listens_for(engine, "connect")
        def _postgres_utc(connection: Any, _record: Any) -> None:
            # timestamptz values come back in the session's zone; UTC makes them read back
            # exactly as on SQLite, whatever the server's or the role's default zone is.
            # Autocommit for the SET, so it is not undone by the pool's first rollback.
            autocommit = connection.autocommit
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'UTC'")
            connection.autocommit = autocommit

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


def write_once(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction. Writes here are idempotent (upsert by id, insert
    once by a unique key), so when a concurrent writer stored the same key first and
    this transaction fails on it, running `work` once more finds that row instead."""
    try:
        with session_scope(engine) as session:
            return work(session)
    except IntegrityError:
        with session_scope(engine) as session:
            return work(session)


def insert_once(session: Session, table: type[SQLModel], values: dict[str, Any]) -> None:
    """INSERT the row, or nothing when one with the same unique key is there: one
    statement, where reading first and then adding would take two. The session's
    pending rows are flushed first, as an ORM statement would (a timeline entry's
    customer must be there before it), unless the caller said `no_autoflush`."""
    if session.autoflush:
        session.flush()
    session.execute(_insert_once(session.get_bind().dialect.name, table.__table__), values)


def insert_rows(session: Session, *rows: SQLModel) -> None:
    """Write new rows with one plain INSERT each, in the order given (what a row's
    foreign keys point at goes first). The session tracks none of them: no unit of work
    to flush, nothing to refresh, a few times cheaper than `session.add` for a handful
    of rows. So the objects are the caller's to read, not to change for a later write;
    an id the database numbers (left None here) is not read back into them."""
    for row in rows:
        table: Table = row.__table__
        values = {column.key: getattr(row, column.key) for column in table.columns}
        if values.get("id", "") is None:
            del values["id"]  # the database numbers it
        session.execute(_insert(table), values)


def insert_many(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """New rows given as column values, in one executemany: no ORM object per row.
    Each row gives every column the database does not fill in itself."""
    if rows:
        session.execute(_insert(model.__table__), rows)  # type: ignore[attr-defined]


# One statement object per table, its values given as parameters: SQLAlchemy then finds
# it compiled in its cache, where values written into the statement made it build a
# cache key from them on every insert. Plain (Core) inserts: the ORM's bulk insert took
# about three times as long for one row.
@cache
def _insert(table: Table) -> Insert:
    return insert(table)


@cache
def _insert_once(dialect: str, table: Table) -> Any:
    inserts = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if dialect not in inserts:
        raise NotImplementedError(f"insert_once on {dialect}: Tandem runs on SQLite or PostgreSQL")
    return inserts[dialect](table).on_conflict_do_nothing()
