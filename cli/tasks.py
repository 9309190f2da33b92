"""`tandem tasks`, `tandem complete` and `tandem result-example`: the human work inside
lifecycles, listed and completed from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import client, engine, fail, out, rep_view, resolve_customer, run, settings
from db.engine import session_scope
from db.queries import list_tasks
from models.tables import TaskRecord
from models.tasks import TaskCompletion, TaskKind, TaskStatus, example_result

app = typer.Typer(pretty_exceptions_enable=False)


@app.command()
def tasks(
    role: Annotated[str | None, typer.Option(help="rep or manager")] = None,
    customer: Annotated[str | None, typer.Option(help="customer id or company")] = None,
    all_tasks: Annotated[bool, typer.Option("--all", help="include closed tasks")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Open human tasks, soonest due first."""
    customer_id = resolve_customer(customer) if customer else None
    with session_scope(engine()) as session:
        rows = list_tasks(
            session,
            role=role,
            customer_id=customer_id,
            assignee=rep_view(),
            status=None if all_tasks else "open",
        )
    if as_json:
        typer.echo(json.dumps([t.model_dump(mode="json") for t in rows], indent=2))
        return
    table = Table("task id", "kind", "owner", "due", "state")
    table.columns[0].no_wrap = True
    for t in rows:
        state = "overdue" if t.overdue else t.status.value
        if t.escalated and t.status is TaskStatus.open:
            state += ", escalated"
        owner = f"{t.owner_role} ({t.assignee})" if t.assignee else t.owner_role
        table.add_row(t.id, t.kind, owner, t.due_at.date().isoformat(), state)
    out.print(table if rows else "No open tasks.")


@app.command()
def complete(
    task_id: str,
    result: Annotated[Path, typer.Option(help="JSON result file ('-' for stdin)")],
    by: Annotated[
        str | None, typer.Option(help="who completed it (default: TANDEM_STAFF_EMAIL or cli)")
    ] = None,
) -> None:
    """Complete a task with its typed result (see `tandem result-example KIND`)."""
    from lifecycles import complete_task

    try:
        text = sys.stdin.read() if str(result) == "-" else result.read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        fail(f"{result}: no such file")
    except json.JSONDecodeError as error:
        fail(f"{result}: not valid JSON: {error}")
    if not isinstance(data, dict):
        fail(f"{result}: the result must be a JSON object")
    rep = rep_view()
    if rep is not None:
        with session_scope(engine()) as session:
            task = session.get(TaskRecord, task_id)
        if task is not None and task.assignee != rep:
            fail(f"{task_id}: a rep completes their own tasks only")
    by = rep or by or settings().staff_email or "cli"
    completion = TaskCompletion(task_id=task_id, completed_by=by, result=data)

    async def go():  # type: ignore[no-untyped-def]
        return await complete_task(await client(), completion)

    receipt = run(go())
    out.print(f"Completed {receipt.task_id} ({receipt.kind.value}) by {receipt.completed_by}.")


@app.command("result-example")
def result_example(kind: TaskKind) -> None:
    """Print an example result for a task kind, to copy into a file."""
    typer.echo(json.dumps(example_result(kind), indent=2))
