"""`tandem sources`: write keys for product events (Segment's tracking API), the events
waiting for an account Tandem does not know yet, and pruning old raw events."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import client, engine, fail, out, run, settings, when
from db.events import prune as prune_events
from db.sources import create_source, list_sources, revoke_source
from db.usage import apply_all_waiting, mark_told, untold_tutorials, waiting_accounts
from models.segment import WaitingAccount
from plans import event_mapping

app = typer.Typer()
sources = typer.Typer(
    help="Product-event sources: write keys and waiting events.", no_args_is_help=True
)
app.add_typer(sources, name="sources")


def _mappings():  # type: ignore[no-untyped-def]
    plans_dir = settings().plans_dir
    return lambda plan: event_mapping(plan, plans_dir)


@sources.command()
def create(name: Annotated[str, typer.Argument(help="the sending app or pipeline")]) -> None:
    """Create a write key; it is printed this once (only its hash is kept)."""
    try:
        row, key = create_source(engine(), name)
    except ValueError as error:
        fail(str(error))
    out.print(f"Source {row.id} {row.name!r} created. Its write key (shown only now):")
    typer.echo(key)


@sources.command("list")
def list_command() -> None:
    """Every source, with its key's first characters and whether it is revoked."""
    grid = Table("id", "name", "key starts", "created", "revoked")
    for row in list_sources(engine()):
        grid.add_row(str(row.id), row.name, row.prefix, when(row.created_at), when(row.revoked_at))
    out.print(grid)


@sources.command()
def revoke(ref: Annotated[str, typer.Argument(help="id, name or key prefix")]) -> None:
    """Refuse a write key from now on."""
    row = revoke_source(engine(), ref)
    if row is None:
        fail(f"no source {ref!r} (try `tandem sources list`)")
    out.print(f"Source {row.id} {row.name!r} revoked: its key is refused from now on.")


@sources.command()
def unattributed(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Events waiting for an account Tandem does not know yet (applied when it appears)."""
    db = engine()
    apply_all_waiting(db, _mappings())
    waiting = waiting_accounts(db)
    if as_json:
        typer.echo(json.dumps([w.model_dump(mode="json") for w in waiting], indent=2))
        return
    if not waiting:
        out.print("No events are waiting: every one is attributed to an account.")
        return
    grid = Table("groupId", "user (no group)", "events", "first", "last")
    for w in waiting:
        grid.add_row(_or_dash(w.group_id), _or_dash(w.user_key), str(w.events), *_span(w))
    out.print(grid)


def _or_dash(value: str | None) -> str:
    return value or "-"


def _span(w: WaitingAccount) -> tuple[str, str]:
    return when(w.first_at), when(w.last_at)


@sources.command()
def apply() -> None:
    """Attribute waiting events to accounts known by now, and tell lifecycles of the
    tutorials they completed."""
    db = engine()
    applied = apply_all_waiting(db, _mappings())
    pending = untold_tutorials(db)
    told = 0
    if pending:
        from lifecycles import tell_tutorials

        async def tell() -> list[str]:
            return await tell_tutorials(
                await client(), [(p.customer_id, p.tutorial) for p in pending]
            )

        for completion, outcome in zip(pending, run(tell()), strict=False):
            mark_told(db, completion, outcome)
            told += 1
    out.print(f"{applied} waiting events applied; {told} tutorial completions told.")


@sources.command()
def prune(
    days: Annotated[
        int | None, typer.Option(help="keep this many days (TANDEM_EVENTS_RETENTION_DAYS)")
    ] = None,
) -> None:
    """Drop raw events older than the retention (daily counts stay; waiting events too)."""
    keep = days if days is not None else settings().events_retention_days
    if keep < 1:
        fail("days: keep at least 1 day")
    removed = prune_events(engine(), keep)
    out.print(f"{removed} raw events older than {keep} days removed.")
