"""Bulk writes: one statement for a whole batch of rows.

On PostgreSQL the rows go as one array per column through `unnest`, so a batch is one
statement with a parameter per column, whatever its size: no per-row round trip in the
pipeline, and the same SQL every time (its parse is cached). SQLite, in process, takes
SQLAlchemy's own multi-row INSERT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

_PG = postgresql.dialect()


def _unnest(table: Table, columns: Sequence[str]) -> str:
    arrays = ", ".join(f"%b::{table.c[c].type.compile(dialect=_PG)}[]" for c in columns)
    return f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"


def _pg(
    session: Session, sql: str, rows: list[dict[str, Any]], columns: Sequence[str]
) -> list[Any]:
    arrays = [[row[c] for row in rows] for c in columns]
    with session.connection().connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.fetchall() if cursor.description else []


def insert_new(
    session: Session, model: type[SQLModel], rows: list[dict[str, Any]], *returning: str
) -> list[tuple[Any, ...]]:
    """INSERT the rows, skipping any whose unique key is already there; the `returning`
    columns of the rows inserted now (so a caller counts only what is new)."""
    if not rows:
        return []
    table: Table = model.__table__  # type: ignore[attr-defined]
    columns = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        sql = _unnest(table, columns) + " ON CONFLICT DO NOTHING"
        if returning:
            sql += f" RETURNING {', '.join(returning)}"
        return [tuple(r) for r in _pg(session, sql, rows, columns)]
    statement = sqlite.insert(table).on_conflict_do_nothing()
    if not returning:
        session.connection().execute(statement, rows)
        return []
    statement = statement.returning(*(table.c[name] for name in returning))
    return [tuple(r) for r in session.connection().execute(statement, rows)]


def add_counts(
    session: Session, model: type[SQLModel], rows: list[dict[str, Any]], key: Sequence[str]
) -> None:
    """INSERT the rows, or add their `count` to the row already there with the same key.
    Rows are taken in key order: concurrent batches lock the same rows in the same order."""
    if not rows:
        return
    table: Table = model.__table__  # type: ignore[attr-defined]
    rows = sorted(rows, key=lambda r: tuple(r[k] for k in key))
    if session.get_bind().dialect.name == "postgresql":
        columns = list(rows[0])
        sql = _unnest(table, columns) + (
            f" ON CONFLICT ({', '.join(key)}) "
            f"DO UPDATE SET count = {table.name}.count + EXCLUDED.count"
        )
        _pg(session, sql, rows, columns)
        return
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(key), set_={"count": table.c["count"] + statement.excluded["count"]}
    )
    session.connection().execute(statement, rows)
