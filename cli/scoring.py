"""`tandem calibrate`: fit the churn risk and the weights to the churn the records hold,
and the judgement table it shares with `tandem backtest` (docs/scoring.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from cli.common import fail, out, settings
from models.plan import ScoringSettings
from plans import PlanError, load_plan, read_plan

app = typer.Typer(pretty_exceptions_enable=False)

HorizonDays = Annotated[
    int | None,
    typer.Option(min=7, max=730, help="churn within this many days (default: the plan's)"),
]
DatabaseUrl = Annotated[
    str | None, typer.Option(help="records DB; default: Tandem's configured one")
]


def scoring_of(plan: str) -> ScoringSettings:
    """A plan's scoring, by name or from a .toml file: a changed plan is judged before it
    is installed."""
    try:
        if plan.endswith(".toml"):
            return read_plan(Path(plan)).scoring
        return load_plan(plan, settings().plans_dir).scoring
    except PlanError as error:
        fail(str(error))


@contextmanager
def records(database_url: str | None, command: str) -> Iterator[Engine]:
    """Tandem's records to read, refused in one line when they are not: a URL that does
    not parse or whose database cannot be opened, a SQLite file that is not there (opening
    it would create an empty one, and a typo would read as 'no history'), or a database
    that is not Tandem's (migrating it would add Tandem's tables to someone else's). The
    database is looked at through a plain engine first, which writes nothing; Tandem's
    records from an earlier release are then migrated, as every command does."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    from db.engine import database_url as records_url
    from db.engine import make_engine
    from db.migrate import current, heads, upgrade

    given = database_url or settings().resolved_database_url
    try:
        url = records_url(given)
    except ArgumentError:
        fail(
            f"--database-url: {given!r} is not a database URL (sqlite:///path/tandem.db, "
            "postgresql://user@host/db)"
        )
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        fail(
            f"no records at {url.database or 'an in-memory database'}: the {command} "
            "re-scores recorded assessments; give --database-url of Tandem's records"
        )
    try:
        probe = create_engine(url, poolclass=NullPool)
    except (NoSuchModuleError, ImportError) as error:
        fail(f"--database-url: Tandem reads SQLite and PostgreSQL records, not {shown} ({error})")
    try:
        revision = current(probe)
    except DBAPIError as error:
        fail(f"cannot read {shown}: {str(error.orig).splitlines()[0]}")
    finally:
        probe.dispose()
    if revision is None:
        fail(
            f"{shown} holds no Tandem records (it has no Tandem schema revision): the "
            f"{command} re-scores recorded assessments; give --database-url of Tandem's records"
        )
    engine = make_engine(url)
    try:
        if revision not in heads():  # already read: no second look, no write lock
            upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        out.print(f"[bold yellow]Warning[/]: {warning}")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_judgements(title: str, judgements: list[dict[str, Any]]) -> None:
    table = Table(
        "horizon",
        "assessments",
        "churned",
        "AUC risk",
        "AUC -level",
        "at risk",
        "precision",
        "recall",
        "lift",
        "top-decile lift",
        "Brier",
        title=title,
    )
    for j in judgements:
        table.add_row(
            j.get("scoring") or f"{j['horizon_days']} d",
            str(j["assessments"]),
            str(j["churned"]),
            _figure(j["auc_churn_risk"]),
            _figure(j["auc_minus_level"]),
            str(j["at_risk_flagged"]),
            _figure(j["precision"]),
            _figure(j["recall"]),
            _figure(j["lift"]),
            _figure(j["top_decile_lift"]),
            _figure(j["brier"]),
        )
    out.print(table)
    # The old and new judgements of calibrate read the same assessments: one caution each.
    for caution in dict.fromkeys(j["caution"] for j in judgements if j.get("caution")):
        out.print(f"[bold yellow]Caution[/]: {caution}")


@app.command()
def calibrate(
    plan: Annotated[str, typer.Option(help="the plan to start from (name or .toml file)")] = (
        "default"
    ),
    horizon_days: HorizonDays = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Fit the churn risk and the weights to the recorded churn (fitted on the earlier
    period, judged on the later one); print the proposed scoring section as TOML and
    whether it is recommended over the plan's (exit 0 either way: see `recommended`)."""
    from simulation.calibrate import TooLittleHistory, report
    from simulation.calibrate import calibrate as run_calibrate

    scoring = scoring_of(plan)
    with records(database_url, "calibration") as engine:
        try:
            result = report(run_calibrate(engine, scoring, horizon_days))
        except TooLittleHistory as error:
            fail(str(error))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    print_warnings(result["warnings"])
    out.print(
        f"Fitted on {result['fitted_on']} assessments ({result['fitted_churns']} followed by "
        f"a churn within {result['horizon_days']} days, at "
        f"{result['fitted_churned_accounts']} accounts) before {result['split_at'][:10]}; "
        f"judged on the {result['judged_on']} after it."
    )
    print_judgements(
        "The later period: the plan's scoring (old) and the proposed one (new)",
        [result["old"] | {"scoring": "old"}, result["new"] | {"scoring": "new"}],
    )
    if result["recommended"]:
        out.print(f"\n{result['verdict']}")
        out.print("\nThe proposed section (put it in the plan file in place of its scoring):\n")
        typer.echo(result["toml"])
        return
    out.print(f"\n[bold red]{result['verdict']}[/]")
    out.print("\nThe proposed section, NOT recommended (for inspection only):\n")
    # Marked in the text itself too, should it be copied or redirected to a file.
    typer.echo("# NOT RECOMMENDED (see the verdict above): keep the plan's current scoring\n")
    typer.echo(result["toml"])
