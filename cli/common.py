"""What every `tandem` command shares: the console, settings, the records engine, the
Temporal client and one way to fail (one line on stderr, exit code 1, nothing changed)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.queries import AmbiguousCustomer, CustomerNotFound, find_customer
from lifecycles import LifecycleError, with_a_worker
from models.roles import Role
from models.tables import Customer
from settings import Settings

# Piped into grep or a file, a table keeps whole ids to copy instead of being cut to 80
# columns with ellipses.
out = Console(width=None if sys.stdout.isatty() else 240)
T = TypeVar("T")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def settings() -> Settings:
    return Settings()


def engine() -> Engine:
    db = make_engine(settings().resolved_database_url)
    upgrade(db)
    return db


WORKER_NEEDED = (
    "nothing was done; start one (`tandem worker`, or `make run` for the whole stack) and try again"
)
SIGN_UP_QUEUED = (
    "the sign-up is queued and will run when one starts (`tandem worker`, or `make run` "
    "for the whole stack)"
)


def run(coroutine: Coroutine[Any, Any, T], without_worker: str = WORKER_NEEDED) -> T:
    """Run one Temporal call; refusals become one-line errors and a non-zero exit. A call
    that waits on a lifecycle while no worker polls the task queue ends the same way,
    saying `without_worker` (what became of the request)."""
    queue = settings().task_queue
    try:
        return asyncio.run(with_a_worker(coroutine, client, queue, without_worker))
    except LifecycleError as error:
        fail(str(error))


async def client():  # type: ignore[no-untyped-def]
    from lifecycles import connect

    config = settings()
    try:
        return await connect(config)
    except RuntimeError as error:  # the SDK's connection failure
        raise LifecycleError(
            f"cannot reach Temporal at {config.temporal_address} ({error}): is `make run` running?"
        ) from None


def rep_view() -> str | None:
    """For a rep running the CLI (TANDEM_STAFF_EMAIL), whose accounts and tasks they
    see; None for a manager, an admin, or an operator with no staff email set."""
    from db.staff import find_person

    email = settings().staff_email
    if not email:
        return None
    person = find_person(engine(), email)
    if person is None or not person.active:
        fail(f"TANDEM_STAFF_EMAIL: {email} is not an active staff member (`tandem staff list`)")
    return person.email if person.role is Role.rep else None


def resolve_customer(ref: str) -> str:
    with session_scope(engine()) as session:
        return find_or_fail(session, ref).id


def find_or_fail(session: Session, ref: str) -> Customer:
    """The customer by id, external id or company name, or one line and exit 1."""
    try:
        return find_customer(session, ref)
    except CustomerNotFound as error:
        not_found(error)


def not_found(error: CustomerNotFound) -> NoReturn:
    hint = "" if isinstance(error, AmbiguousCustomer) else " (try `tandem customers`)"
    fail(f"{error}{hint}")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def score(value: float | None) -> str:
    """A score or level on -1..1 as the tables show it; '-' where an input was missing."""
    return "-" if value is None else f"{value:+.2f}"
