"""`tandem` commands for admins and operators: plan templates, API tokens, schema
migrations, email previews, and the codec server with its keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import engine, fail, out, settings, when
from plans import PlanError, load_plan, plan_files, read_plan

plans_app = typer.Typer(help="Plan templates (playbooks).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens, each for a staff member.", no_args_is_help=True)
db_app = typer.Typer(help="The records database: schema migrations.", no_args_is_help=True)
emails_app = typer.Typer(help="Email templates.", no_args_is_help=True)
app = typer.Typer(pretty_exceptions_enable=False)
app.add_typer(plans_app, name="plans")
app.add_typer(tokens_app, name="tokens")
app.add_typer(db_app, name="db")
app.add_typer(emails_app, name="emails")


@plans_app.command("list")
def plans_list() -> None:
    """Plan templates by name."""
    for name, path in plan_files(settings().plans_dir).items():
        out.print(f"{name}\t{path}")


@plans_app.command("validate")
def plans_validate(file: Path) -> None:
    """Check a plan file; errors name the field path."""
    try:
        plan = read_plan(file) if file.suffix == ".toml" else fail(f"{file}: not a .toml")
    except PlanError as error:
        fail(str(error))
    out.print(f"{file}: valid plan {plan.label} with {len(plan.onboarding.tutorials)} tutorials")


@plans_app.command("show")
def plans_show(name: str) -> None:
    """A plan template with every default filled in, as JSON."""
    try:
        typer.echo(load_plan(name, settings().plans_dir).model_dump_json(indent=2))
    except PlanError as error:
        fail(str(error))


@tokens_app.command("create")
def tokens_create(
    person: Annotated[str, typer.Option(help="the staff member's email (see `tandem staff`)")],
    name: Annotated[str, typer.Option(help="what uses it, e.g. 'laptop'")],
) -> None:
    """Create an API token for a staff member; it acts with their role. It is shown
    once and stored only as a hash."""
    from db.staff import StaffError
    from db.tokens import create_token

    try:
        row, token = create_token(engine(), name, person)
    except StaffError as error:
        fail(str(error))
    out.print(f"Token {row.id} for {row.person} ({row.role}); keep it now, it is not shown again:")
    typer.echo(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """Tokens with their person, role and last use (never the token itself)."""
    from db.tokens import list_tokens

    table = Table("id", "name", "person", "role", "prefix", "last used", "revoked")
    for t in list_tokens(engine()):
        person = t.person or "-"
        if t.staff_id is None:
            person += " (not a staff member: reissue)"
        table.add_row(
            str(t.id),
            t.name,
            person,
            t.role,
            t.prefix,
            when(t.last_used_at),
            when(t.revoked_at) if t.revoked_at else "",
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token at once (its browser sessions end too)."""
    from db.tokens import revoke_token

    if revoke_token(engine(), token_id) is None:
        fail(f"no token {token_id}")
    out.print(f"Token {token_id} revoked.")


def _database() -> tuple[str, str]:
    """The records URL, and the same with any password masked, for printing."""
    from sqlalchemy import make_url

    url = settings().resolved_database_url
    return url, make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Apply the schema migrations to the records database (a no-op when up to date)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from db import migrate

    url, shown = _database()
    try:
        before = migrate.current(url)
        migrate.upgrade(url, revision)
        after = migrate.current(url)
    except (CommandError, SQLAlchemyError) as error:
        fail(f"{shown}: {str(error).splitlines()[0]}")
    if before == after:
        typer.echo(f"{shown}: already at {after}")
    else:
        typer.echo(f"{shown}: upgraded from {before or 'an empty database'} to {after}")


@db_app.command("current")
def db_current() -> None:
    """The records database's schema revision, and the latest this version knows."""
    from sqlalchemy.exc import SQLAlchemyError

    from db import migrate

    url, shown = _database()
    try:
        revision = migrate.current(url)
    except SQLAlchemyError as error:
        fail(f"{shown}: {str(error).splitlines()[0]}")
    latest = ", ".join(migrate.heads())
    state = "up to date" if revision == latest else f"latest is {latest}"
    typer.echo(f"{shown}: at {revision or 'no revision (empty)'} ({state})")


@emails_app.command("preview")
def emails_preview(
    name: str, html: Annotated[bool, typer.Option(help="print the HTML part")] = False
) -> None:
    """Render an email template with sample data."""
    from activities.rendering import preview

    try:
        email = preview(name)
    except (KeyError, ValueError) as error:
        fail(str(error).strip("'\""))
    typer.echo(f"Subject: {email.subject}\n")
    typer.echo(email.html if html else email.text)


@app.command("codec-server")
def codec_server(
    port: Annotated[int, typer.Option(help="port to listen on")] = 8081,
    host: Annotated[str, typer.Option(help="keep loopback unless it sits behind auth")] = (
        "127.0.0.1"
    ),
    origin: Annotated[
        list[str] | None, typer.Option(help="a Temporal UI origin allowed to call it (repeat)")
    ] = None,
) -> None:
    """Decrypt payloads for Temporal's UI when TANDEM_ENCRYPTION_KEYS is set."""
    from codec import (
        DEFAULT_ORIGINS,
        CodecServerError,
        EncryptionKeyError,
        encryption_keys_of,
        serve,
    )

    config = settings()
    keys, token, hosts = encryption_keys_of(config), config.codec_token, config.codec_hosts
    try:
        serve(keys, host, port, origin or DEFAULT_ORIGINS, token, hosts)
    except (EncryptionKeyError, CodecServerError) as error:
        fail(str(error))


@app.command("encryption-key")
def encryption_key() -> None:
    """Print a new random key for TANDEM_ENCRYPTION_KEYS."""
    from codec import new_key

    typer.echo(new_key())
