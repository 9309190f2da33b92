"""`tandem simulate`: one seeded cohort through the real lifecycles under one plan, or
under two side by side; writes simulation.json and simulation.html."""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from db.engine import make_engine
from db.migrate import upgrade
from models.plan import PlanTemplate
from settings import Settings
from simulation.accounts import make_cohort
from simulation.clock import SimulatedClock
from simulation.cohort import CohortRun
from simulation.report import render
from simulation.results import summarize
from stack import find_binary
from worker import build_worker, ensure_search_attributes


@functools.cache
def quiet_runtime() -> Runtime:
    """The test server does not advertise a capability the SDK's core warns about on
    every worker start; that warning would only bury the progress bar."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


JSON_NAME = "simulation.json"
HTML_NAME = "simulation.html"


@contextlib.asynccontextmanager
async def _server(env: WorkflowEnvironment | None) -> AsyncIterator[WorkflowEnvironment]:
    if env is not None:  # the caller's (a test session's) server
        yield env
        return
    started = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
        runtime=quiet_runtime(),
    )
    try:
        yield started
    finally:
        await started.shutdown()


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    )


async def simulate(
    customers: int,
    months: int,
    seed: int,
    plans: list[PlanTemplate],
    out: Path,
    env: WorkflowEnvironment | None = None,
    keep_records: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the cohort once per plan (the same seeded cohort each time) and write the
    report; returns what went into the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "seed": seed,
        "customers": customers,
        "months": months,
        "plans": [p.label for p in plans],
        "runs": [],
    }
    async with _server(env) as server:
        await ensure_search_attributes(server.client, "default")
        clock = await SimulatedClock.of(server)
        with _progress(console) as progress:
            for index, plan in enumerate(plans, 1):
                records = out / f"records-{index}-{plan.name}.db" if keep_records else None
                run = await _run_plan(
                    clock, plan, customers, months, seed, f"r{index}", progress, records
                )
                results["runs"].append(run)
    (out / JSON_NAME).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out / HTML_NAME).write_text(render(results), encoding="utf-8")
    return results


async def _run_plan(
    clock: SimulatedClock,
    plan: PlanTemplate,
    customers: int,
    months: int,
    seed: int,
    prefix: str,
    progress: Progress,
    keep: Path | None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tandem-simulation-") as tmp:
        # Thousands of emails no one reads: kept in the records only, no .eml files.
        settings = Settings(
            var_dir=Path(tmp),
            database_url=None,
            smtp_host=None,
            email_files=False,
            plans_dir=None,
        )
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
        try:
            run = CohortRun(
                clock=clock,
                engine=engine,
                plan=plan,
                accounts=make_cohort(seed, customers, prefix),
                seed=seed,
                months=months,
                task_queue=f"simulation-{prefix}",
                progress=progress,
            )
            async with build_worker(clock.client, settings, engine, task_queue=run.task_queue):
                await run.run()
            summary = summarize(run)
        finally:
            engine.dispose()
        if keep is not None:
            _copy_sqlite(Path(tmp) / "tandem.db", keep)
    return summary


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's own backup, so the copy includes what is still in the WAL."""
    target.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
