"""Alembic's environment: what the revisions describe and where the database is.

`db.migrate` passes its own connection (locked and in a transaction) through
`config.attributes["connection"]`; the `alembic` command passes none, and this connects
to TANDEM_DATABASE_URL / DATABASE_URL through the same lock. How revisions render
(`render_item`) and compare is in `db.migrate`, shared with the tests' drift check.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from db.engine import database_url
from db.migrate import autogenerate_options, engine_for, migration_connection

config = context.config
if config.config_file_name is not None:  # the `alembic` command: log what it does
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    from settings import Settings  # the `alembic` command only, never the application

    return config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url


def run_offline() -> None:
    """`alembic upgrade head --sql`: the SQL for a DBA to read or run, no connection."""
    url = database_url(_url())
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **autogenerate_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **autogenerate_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with engine_for(_url()) as engine, migration_connection(engine) as own:
        _run(own)


if context.is_offline_mode():
    run_offline()
else:
    run_online()
