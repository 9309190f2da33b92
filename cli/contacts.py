"""`tandem contacts`: the people at an account and their roles (champion, executive
sponsor, admin, billing, user), each one's opt-out of automated email, and addresses
reported as bouncing. A champion who leaves is told to the lifecycle."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from cli.common import client, engine, fail, not_found, out, rep_view
from db.contacts import ContactChanged, ContactError, ContactNotFound
from db.engine import session_scope
from db.queries import CustomerNotFound, find_customer
from models.contacts import ContactChange, ContactRole, ContactStatus, NewContact
from models.tasks import describe_validation_error

contacts_app = typer.Typer(help="The people at an account, and their roles.", no_args_is_help=True)
app = typer.Typer(pretty_exceptions_enable=False)
app.add_typer(contacts_app, name="contacts")
ACTOR = "cli"

Customer = Annotated[str, typer.Argument(help="customer id, external id or company")]
Email = Annotated[str, typer.Argument(help="the contact's email")]
Roles = Annotated[
    list[ContactRole] | None,
    typer.Option("--role", help="a role (repeat for several)", show_default=False),
]


def _managers_only() -> None:
    """As in the API: reps read their accounts' contacts; managers and admins change them."""
    if rep_view() is not None:
        fail("contacts are changed by managers and admins (TANDEM_STAFF_EMAIL is a rep)")


@contacts_app.command("list")
def contacts_list(
    customer: Customer,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The account's contacts, active champions first."""
    from db.contacts import list_contacts

    rep = rep_view()
    with session_scope(engine()) as session:
        try:
            account = find_customer(session, customer)
            if rep is not None and account.rep != rep:  # as if it did not exist
                raise CustomerNotFound(f"no customer {customer!r}")
            contacts = list_contacts(session, account.id)
        except CustomerNotFound as error:
            not_found(error)
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in contacts], indent=2))
        return
    table = Table("email", "name", "roles", "status", "source")
    for c in contacts:
        roles = ", ".join(r.value for r in c.roles) or "-"
        table.add_row(c.email, c.name, roles, c.status.value, c.source)
    out.print(table if contacts else "No contacts: `tandem contacts add --help`.")


@contacts_app.command("add")
def contacts_add(
    customer: Customer,
    name: Annotated[str, typer.Option(help="their name")],
    email: Annotated[str, typer.Option(help="their email")],
    role: Roles = None,
) -> None:
    """Add a contact (a user unless --role says otherwise)."""
    from db.contacts import add_contact

    _managers_only()
    try:
        new = NewContact(name=name, email=email, roles=role or [ContactRole.user])
    except ValidationError as error:
        fail(describe_validation_error(error))
    try:
        contact = add_contact(engine(), customer, new, ACTOR, source="cli")
    except CustomerNotFound as error:
        not_found(error)
    except ContactError as error:
        fail(str(error))
    roles = ", ".join(r.value for r in contact.roles)
    out.print(f"Added {contact.name} <{contact.email}> to {contact.customer_id} as {roles}.")


def _report(done: ContactChanged, what: str) -> None:
    c = done.contact
    out.print(f"{c.customer_id}: {c.name} <{c.email}> {what}.")
    if done.champion_left:
        _tell_champion_left(c.customer_id, c.email)


def _tell_champion_left(customer_id: str, email: str) -> None:
    """The change is stored; the lifecycle opens the `champion_left` playbook. Temporal
    out of reach is said, not an error: the contact's record is already right."""
    from lifecycles import LifecycleError, tell_champion_left

    out.print(f"{email} was a champion of {customer_id}: the champion_left playbook opens.")

    async def go() -> str:
        return await tell_champion_left(await client(), customer_id, email)

    try:
        outcome = asyncio.run(go())
    except LifecycleError as error:
        outcome = f"not told: {error}"
    out.print(f"The lifecycle: {outcome}.")


@contacts_app.command("update")
def contacts_update(
    customer: Customer,
    email: Email,
    name: Annotated[str | None, typer.Option(help="their new name")] = None,
    role: Roles = None,
    status: Annotated[ContactStatus | None, typer.Option(help="active, left or bounced")] = None,
    unsubscribed: Annotated[
        bool | None,
        typer.Option(
            "--unsubscribed/--subscribed",
            help="stop automated email to them (they asked), or send it again",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Change a contact's name, roles (--role replaces them all), status, or their own
    opt-out of automated email (the account's other contacts still get it)."""
    from db.contacts import update_contact

    _managers_only()
    try:
        change = ContactChange(name=name, roles=role, status=status, unsubscribed=unsubscribed)
    except ValidationError as error:
        fail(describe_validation_error(error))
    if not change.changes():
        fail("nothing to change: give --name, --role, --status or --unsubscribed/--subscribed")
    try:
        done = update_contact(engine(), customer, email, change, ACTOR)
    except (CustomerNotFound, ContactNotFound) as error:
        fail(str(error).strip("'\""))
    except ContactError as error:
        fail(str(error))
    roles = ", ".join(r.value for r in done.contact.roles) or "no role"
    opted_out = ", unsubscribed" if done.contact.unsubscribed_at else ""
    _report(done, f"is {done.contact.status.value}, {roles}{opted_out}")


@contacts_app.command("mark-left")
def contacts_mark_left(customer: Customer, email: Email) -> None:
    """Mark a contact as gone from the account (kept in its history)."""
    from db.contacts import update_contact

    _managers_only()
    try:
        done = update_contact(
            engine(), customer, email, ContactChange(status=ContactStatus.left), ACTOR
        )
    except (CustomerNotFound, ContactNotFound) as error:
        fail(str(error).strip("'\""))
    _report(done, "has left")


@contacts_app.command("remove")
def contacts_remove(customer: Customer, email: Email) -> None:
    """Take a contact off the account (the audit log keeps who they were)."""
    from db.contacts import remove_contact

    _managers_only()
    try:
        done = remove_contact(engine(), customer, email, ACTOR)
    except (CustomerNotFound, ContactNotFound) as error:
        fail(str(error).strip("'\""))
    _report(done, "is removed")


@contacts_app.command("bounced")
def contacts_bounced(
    emails: Annotated[list[str], typer.Argument(help="addresses that bounced", show_default=False)],
) -> None:
    """Mark the contacts at these addresses bounced, at every account (a bounce that
    came back after the relay took the mail). A champion's lifecycle is told."""
    from db.contacts import mark_bounced

    _managers_only()
    try:
        report = mark_bounced(engine(), emails, ACTOR)
    except ContactError as error:
        fail(str(error))
    for done in report.bounced:
        _report(done, "bounced")
    for what in report.unchanged:
        out.print(f"{what}: not active already, unchanged.")
    for address in report.unknown:
        out.print(f"{address}: no account has this contact.")
