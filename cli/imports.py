"""`tandem import accounts.csv`: existing accounts, mid-term, from another system. Every
row is checked first; a file with any bad row starts nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cli.common import client, engine, fail, out, run, settings

app = typer.Typer(pretty_exceptions_enable=False)

WITHOUT_WORKER = (
    "the accounts told so far are importing and the rest were not sent; start one "
    "(`tandem worker`) and import the file again: accounts already in are left as they are"
)


@app.command("import")
def import_accounts(
    file: Annotated[Path, typer.Argument(help="a CSV file: see docs/contacts-and-import.md")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check every row, start nothing")
    ] = False,
) -> None:
    """Start lifecycles for existing accounts mid-term (external_id, company, contacts,
    term_start, term_end; plan, owner, mrr, onboarded). Importing again changes nothing."""
    from account_import import check_file, decode, start_accounts

    try:
        text = decode(file.read_bytes())
    except (OSError, ValueError) as error:
        fail(f"cannot read {file}: {error}")
    config = settings()
    today = datetime.now(UTC)
    rows, problems = check_file(text, engine(), config.plans_dir, today, source=file.name)
    if problems:
        for problem in problems:
            out.print(f"{file.name}: {problem}", markup=False, highlight=False)
        fail(f"{len(problems)} problem(s) in {file.name}: nothing was imported")
    if dry_run:
        out.print(f"{file.name}: {len(rows)} account(s), no problems (dry run: nothing started).")
        return
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    # On a terminal only: elsewhere (a pipe, a log) a transient bar still leaves a newline.
    with Progress(*columns, console=out, transient=True, disable=not out.is_terminal) as progress:
        bar = progress.add_task("import", total=len(rows))

        async def go() -> tuple[int, int]:
            return await start_accounts(
                await client(),
                rows,
                config.task_queue,
                lambda row, new: progress.advance(bar),
            )

        started, unchanged = run(go(), without_worker=WITHOUT_WORKER)
    out.print(f"{file.name}: {started} account(s) started, {unchanged} already running.")
