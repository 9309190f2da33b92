"""The records' schema, owned by the Alembic revisions in `migrations/`, applied from code.

The worker, the CLI, the API and the tests call `upgrade` on start, so a new release
upgrades the schema the first time it runs; `tandem db upgrade` calls it on purpose.
Nothing here depends on the working directory or on `alembic.ini` (which exists only for
writing revisions with the `alembic` command): the revisions are found beside this
package, in a checkout and in an installed wheel alike.

Several processes may start at once against a new database (a worker, the API, a CLI
command), so a migration runs in one transaction that only one process at a time can
enter: a PostgreSQL advisory lock, or SQLite's write lock taken up front.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, text
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

# Their tables belong to the schema too.
import models.contacts
import models.staff  # noqa: F401
from db.engine import make_engine
from models.tables import UTCDateTime

# migrations/ is a top-level package beside db/, in the repository as in site-packages.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Any constant 64-bit number, the same in every process: the key of the advisory lock
# that lets one PostgreSQL migration run at a time. ("TANDEM" in ASCII.)
MIGRATION_LOCK_KEY = 0x54414E44454D

EngineOrURL = Engine | str | URL

# Alembic's `op` and `context` are process-wide proxies: two migrations running in two
# threads would send each other's operations to the wrong connection. The database's own
# lock (below) keeps processes apart; this keeps threads apart.
_in_process = threading.Lock()


class ForeignKeyViolation(RuntimeError):
    """A SQLite migration left rows pointing at nothing; it was rolled back."""


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Our column types as plain SQLAlchemy ones in a new revision: a revision is frozen in
    time and must not import application code, which will have changed when it runs."""
    if type_ == "type":
        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(obj, AutoString):  # what SQLModel gives a `str` field
            return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False  # Alembic's own rendering


def autogenerate_options(dialect_name: str) -> dict[str, Any]:
    """How env.py configures Alembic, and how the tests compare models with a database."""
    return {
        "target_metadata": SQLModel.metadata,
        "render_item": render_item,
        "compare_type": True,
        # SQLite alters little in place; batch mode rebuilds a table by copy instead.
        "render_as_batch": dialect_name == "sqlite",
    }


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file; with a connection, env.py uses it."""
    config = Config()
    # configparser would read a '%' in the path as an interpolation.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@lru_cache
def _script() -> ScriptDirectory:
    # Parsed once per process: the CLI checks the schema on every command.
    return ScriptDirectory.from_config(alembic_config())


def heads() -> tuple[str, ...]:
    """The latest revision(s) this code knows (one, unless branches were merged badly)."""
    return tuple(_script().get_heads())


@contextmanager
def engine_for(target: EngineOrURL) -> Iterator[Engine]:
    """The caller's engine as is, or one made from a URL for this call only."""
    if isinstance(target, Engine):
        yield target
        return
    engine = make_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def current(target: EngineOrURL) -> str | None:
    """The database's revision, or None for a database Alembic has never touched."""
    with engine_for(target) as engine, engine.connect() as connection:
        found = _current_heads(connection)
    if len(found) > 1:
        raise RuntimeError(f"the database is at several revisions at once: {', '.join(found)}")
    return found[0] if found else None


def is_current(target: EngineOrURL) -> bool:
    """True when the database is at the latest revision this code knows."""
    with engine_for(target) as engine, engine.connect() as connection:
        return set(_current_heads(connection)) == set(heads())


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction that commits when the block succeeds and that no
    other process migrating the same database can enter at the same time."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            with _sqlite_migration(connection):
                yield connection
            return
        if engine.dialect.name == "postgresql":
            # Held until the commit; a second process waits here, then finds it all done.
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
        try:
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise


@contextmanager
def _sqlite_migration(connection: Connection) -> Iterator[None]:
    """SQLite's own procedure for schema changes: foreign keys off, one IMMEDIATE
    transaction, a foreign-key check before the commit, foreign keys back on.

    Python's sqlite3 (3.11) runs DDL outside any transaction unless told otherwise, so
    the transaction is begun by hand, with the driver's implicit BEGIN turned off. IMMEDIATE
    takes the write lock first: a second process waits (the engine's 30 s timeout), then
    reads the revision already applied, rather than failing on half-created tables.
    Foreign keys are off because Alembic's batch mode rebuilds a table by copying it, and
    dropping the original would otherwise cascade or fail; PRAGMA foreign_keys is ignored
    inside a transaction, hence before BEGIN.
    """
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    saved = dbapi.isolation_level
    dbapi.isolation_level = None
    try:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
            violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if violations:
                raise ForeignKeyViolation(
                    f"the migration would leave rows without their parent: {violations[:5]}"
                )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
    finally:
        try:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()  # ends SQLAlchemy's own autobegun transaction: a no-op
            dbapi.isolation_level = saved
        except Exception:
            # Never back to the pool with foreign keys off: the pool will open a new one.
            connection.invalidate()


def upgrade(target: EngineOrURL, revision: str = "head") -> None:
    """Apply the revisions up to `revision`; a database already there costs one SELECT."""
    with engine_for(target) as engine:
        if revision == "head" and is_current(engine):
            return
        with _in_process, migration_connection(engine) as connection:
            command.upgrade(alembic_config(connection), revision)


def downgrade(target: EngineOrURL, revision: str) -> None:
    """Undo revisions down to `revision` ("base" drops every table: all records go)."""
    with engine_for(target) as engine, _in_process, migration_connection(engine) as connection:
        command.downgrade(alembic_config(connection), revision)
