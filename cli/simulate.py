"""`tandem simulate` and `tandem backtest`: synthetic cohorts through the real lifecycles,
and recorded assessments re-scored under a changed plan."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import fail, out, settings
from cli.scoring import DatabaseUrl, print_judgements, print_warnings, records, scoring_of
from models.plan import PlanTemplate
from plans import PlanError, load_plan, read_plan

app = typer.Typer(pretty_exceptions_enable=False)


def _plan(name: str) -> PlanTemplate:
    """A plan by name, or the operator's own file: a simulation or a backtest runs on
    this machine only, so trying a draft plan needs no plans folder (sign-ups, which
    come from outside, take names only)."""
    try:
        if name.endswith(".toml"):
            return read_plan(Path(name))
        return load_plan(name, settings().plans_dir)
    except PlanError as error:
        fail(str(error))


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(min=1, help="cohort size")] = 200,
    months: Annotated[int, typer.Option(min=1, help="months to simulate")] = 12,
    seed: Annotated[int, typer.Option(help="the same seed gives the same results")] = 7,
    plan: Annotated[str, typer.Option(help="plan name or .toml file")] = "default",
    compare: Annotated[
        str | None, typer.Option(help="a second plan: the same cohort, side by side")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="where the report goes")] = Path(
        "var/simulation"
    ),
    keep_records: Annotated[
        bool, typer.Option(help="also keep each run's records DB (for `tandem backtest`)")
    ] = False,
) -> None:
    """Run a synthetic cohort through the real lifecycles; write an HTML and a JSON report."""
    from simulation.simulate import HTML_NAME, JSON_NAME
    from simulation.simulate import simulate as run_simulation

    plans = [_plan(plan)] + ([_plan(compare)] if compare else [])
    try:  # before the run: minutes of it must not end in a folder that cannot be made
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"--out {out_dir}: cannot make the report's folder there ({error.strerror})")
    results = asyncio.run(
        run_simulation(
            customers, months, seed, plans, out_dir, keep_records=keep_records, console=out
        )
    )
    table = Table(
        "plan", "retention", "churned", "tasks opened", "escalated", "happy & profitable at the end"
    )
    for run in results["runs"]:
        last = run["months"][-1]["quadrants"]["happy_profitable"] if run["months"] else 0
        table.add_row(
            run["plan"],
            _ratio(run["totals"]["retention"]),
            str(run["totals"]["churned"]),
            str(run["tasks"]["total_opened"]),
            str(run["tasks"]["total_escalated"]),
            str(last),
        )
    out.print(table)
    out.print(f"Report: {out_dir / HTML_NAME}\nData:   {out_dir / JSON_NAME}")


@app.command()
def backtest(
    plan: Annotated[str, typer.Option(help="the changed plan (name or .toml file)")] = "default",
    database_url: DatabaseUrl = None,
    horizon_days: Annotated[
        int | None,
        typer.Option(
            min=7, max=730, help="judge only this horizon (default: 30, 60, 90 and the plan's)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Re-score recorded assessments under a changed plan's scoring; no lifecycle is touched."""
    from simulation.backtest import backtest as run_backtest

    scoring = scoring_of(plan)
    with records(database_url, "backtest") as engine:
        report = run_backtest(engine, scoring, horizon_days)
    if not report["assessments"]:
        fail(
            "the records hold no assessments to re-score: a lifecycle records one at each "
            "check-in (and `tandem reassess`)"
        )
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    print_warnings(report["warnings"])
    _print_backtest(report)
    print_judgements(
        "Every re-scored assessment against churn within the horizon", report["judgement"]
    )


def _print_backtest(report: dict[str, Any]) -> None:
    out.print(
        f"{report['assessments']} assessments of {report['accounts']} accounts re-scored: "
        f"{report['assessments_changed']} would land in another quadrant, among them the "
        f"latest assessment of {len(report['changes'])} accounts."
    )
    if report["changes"]:
        table = Table(
            "customer",
            "company",
            "latest assessment",
            "old",
            "new",
            "churned",
            title="Accounts whose latest quadrant would change",
        )
        for c in report["changes"]:
            table.add_row(
                c["customer"],
                c["company"],
                c["assessed_at"][:10],
                c["old"],
                c["new"],
                "yes" if c["churned"] else "",
            )
        out.print(table)
    else:
        out.print("No account's latest quadrant would change.")
    table = Table(
        "scoring",
        "at risk",
        "churned",
        "caught",
        "precision",
        "recall",
        title="At risk at the latest assessment vs churn",
    )
    for name, m in report["at_risk"].items():
        table.add_row(
            "recorded" if name == "old" else "new",
            str(m["flagged"]),
            str(m["churned"]),
            str(m["caught"]),
            _ratio(m["precision"]),
            _ratio(m["recall"]),
        )
    out.print(table)
