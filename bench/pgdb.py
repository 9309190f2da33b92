"""A PostgreSQL database of its own for a benchmark: created on the server the suite or the
operator names, dropped afterwards whatever happens.

    TANDEM_BENCH_POSTGRES_URL   where to create the database (default: postgres@127.0.0.1/test;
                                the test suite sets it to its TANDEM_TEST_POSTGRES_URL)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy import URL

from bench.common import say
from db.engine import database_url

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    """Read when used, so one setting (the test suite's) can point every run elsewhere."""
    return os.environ.get("TANDEM_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)


def libpq_url(url: str | URL) -> str:
    """The SQLAlchemy URL as libpq reads it (psycopg.connect)."""
    parsed = database_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@contextlib.contextmanager
def bench_database(prefix: str) -> Iterator[str]:
    """A new database, dropped afterwards whatever happens (WITH (FORCE) ends the API's
    connections too). Yields its SQLAlchemy URL."""
    name = f"tandem_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = libpq_url(admin_url())
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    say(f"created database {name}")
    try:
        url = database_url(admin_url()).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        say(f"dropped database {name}")
