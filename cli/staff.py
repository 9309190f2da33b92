"""`tandem staff` (the success team's people) and `tandem assign` (who owns an account
or a task). Every change is audited; reassignments record who, from, to and when."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import engine, fail, not_found, out
from db.engine import session_scope
from db.queries import CustomerNotFound
from db.staff import StaffError
from models.roles import Role

staff_app = typer.Typer(help="The success team: reps, managers and admins.", no_args_is_help=True)
assign_app = typer.Typer(help="Who owns an account, or does a task.", no_args_is_help=True)
app = typer.Typer(pretty_exceptions_enable=False)
app.add_typer(staff_app, name="staff")
app.add_typer(assign_app, name="assign")
ACTOR = "cli"


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Option(help="their name")],
    email: Annotated[str, typer.Option(help="their email: accounts and tasks name them by it")],
    role: Annotated[Role, typer.Option(help="rep, manager or admin")],
) -> None:
    """Add a person to the staff (then `tandem tokens create --person EMAIL`)."""
    from db.staff import add_staff

    try:
        person = add_staff(engine(), name, email, role.value, ACTOR)
    except StaffError as error:
        fail(str(error))
    out.print(f"Added {person.name} <{person.email}> as {person.role.value}.")


@staff_app.command("list")
def staff_list(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Everyone on the staff, with how many open accounts each has."""
    from db.staff import list_staff

    with session_scope(engine()) as session:
        people = list_staff(session)
    if as_json:
        typer.echo(json.dumps([p.model_dump(mode="json") for p in people], indent=2))
        return
    table = Table("email", "name", "role", "open accounts", "active")
    for p in people:
        table.add_row(
            p.email, p.name, p.role.value, str(p.open_accounts), "yes" if p.active else "no"
        )
    out.print(table if people else "No staff yet: `tandem staff add --help`.")


def _set_active(email: str, active: bool) -> None:
    from db.staff import set_active

    try:
        person = set_active(engine(), email, active, ACTOR)
    except StaffError as error:
        fail(str(error))
    state = "active" if person.active else "deactivated (their tokens no longer work)"
    out.print(f"{person.email} is {state}; {person.open_accounts} open accounts.")
    if not active and person.open_accounts:
        out.print("Move them with `tandem assign account CUSTOMER --manager/--rep EMAIL`.")


@staff_app.command("deactivate")
def staff_deactivate(email: str) -> None:
    """Deactivate a person: their tokens stop at once, new accounts skip them."""
    _set_active(email, False)


@staff_app.command("activate")
def staff_activate(email: str) -> None:
    """Reactivate a person."""
    _set_active(email, True)


@assign_app.command("account")
def assign_account(
    customer: Annotated[str, typer.Argument(help="customer id or company")],
    manager: Annotated[str | None, typer.Option(help="the new owning manager's email")] = None,
    rep: Annotated[str | None, typer.Option(help="the new rep's email, or 'none'")] = None,
) -> None:
    """Give an account a new manager and/or rep; its open tasks move with it."""
    from db.assignment import reassign_account

    try:
        done = reassign_account(engine(), customer, ACTOR, manager=manager, rep=rep)
    except CustomerNotFound as error:
        not_found(error)
    except StaffError as error:
        fail(str(error))
    out.print(
        f"{done.customer_id}: manager {done.manager or '-'}, rep {done.rep or '-'}; "
        f"{len(done.tasks_moved)} open task(s) moved."
    )


@assign_app.command("task")
def assign_task(task_id: str, to: Annotated[str, typer.Option(help="the person's email")]) -> None:
    """Give one open task to a person (e.g. a rep task from the managers' queue)."""
    from db.assignment import reassign_task

    try:
        task = reassign_task(engine(), task_id, to, ACTOR)
    except LookupError as error:
        fail(str(error))
    except StaffError as error:
        fail(str(error))
    out.print(f"{task.id} is assigned to {task.assignee}.")
