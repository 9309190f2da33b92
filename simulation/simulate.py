"""`tandem simulate`: one seeded cohort through the real lifecycles under one plan, or
under two side by side; writes simulation.json and simulation.html."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import multiprocessing
import os
import sqlite3
import tempfile
import traceback
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from collector import tune_collector
from db.migrate import upgrade
from models.plan import PlanTemplate
from settings import Settings
from simulation.accounts import make_cohort
from simulation.clock import SimulatedClock
from simulation.cohort import MONTH_DAYS, CohortRun, ProgressReport
from simulation.records import records_engine
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
async def _server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the run's own: it has one clock, which a run moves
    a day at a time, so two runs at once cannot share one."""
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


@dataclass(frozen=True)
class PlanRun:
    """One plan's run of the cohort: what a process of its own needs to run it."""

    plan: PlanTemplate
    customers: int
    months: int
    seed: int
    prefix: str  # the cohort's customer ids are made with it: each run's are its own
    keep: Path | None  # where to copy the run's records DB, if anywhere


async def simulate(
    customers: int,
    months: int,
    seed: int,
    plans: list[PlanTemplate],
    out: Path,
    keep_records: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the cohort once per plan (the same seeded cohort each time) and write the
    report; returns what went into the JSON. Two plans run side by side."""
    out.mkdir(parents=True, exist_ok=True)
    runs = [
        PlanRun(
            plan,
            customers,
            months,
            seed,
            f"r{index}",
            out / f"records-{index}-{plan.name}.db" if keep_records else None,
        )
        for index, plan in enumerate(plans, 1)
    ]
    with _progress(console) as progress:
        bars = [
            progress.add_task(run.plan.label, total=months * MONTH_DAYS, start=False)
            for run in runs
        ]

        def report(index: int, doing: str, days: int) -> None:
            progress.start_task(bars[index])  # the clock of a run from its first report
            progress.update(bars[index], description=doing, completed=days)

        if len(runs) == 1:
            summaries = [await _run_plan(runs[0], functools.partial(report, 0))]
        else:
            summaries = await _side_by_side(runs, report)
    results: dict[str, Any] = {
        "seed": seed,
        "customers": customers,
        "months": months,
        "plans": [p.label for p in plans],
        "runs": summaries,
    }
    (out / JSON_NAME).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out / HTML_NAME).write_text(render(results), encoding="utf-8")
    return results


async def _side_by_side(
    runs: list[PlanRun], report: Callable[[int, str, int], None]
) -> list[dict[str, Any]]:
    """Each plan's run in a process of its own, with a test server of its own, on CPUs of
    its own (`cpu_shares`). A run's simulator, worker and activities share one process
    and its GIL, so a plan uses one core; more processes for one plan would take turns on
    its records' one SQLite write lock, which an activity holds for nearly all its work.
    The runs' progress comes back through a queue."""
    # Spawned, not forked: this process already runs the SDK's threads.
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()

    def show() -> None:
        for index, doing, days in iter(reports.get, None):
            report(index, doing, days)

    showing = asyncio.create_task(asyncio.to_thread(show))
    try:
        with ProcessPoolExecutor(
            len(runs), mp_context=context, initializer=_report_to, initargs=(reports,)
        ) as pool:
            loop = asyncio.get_running_loop()
            return list(
                await asyncio.gather(
                    *(
                        loop.run_in_executor(pool, _run_alone, index, run, cpus)
                        for index, (run, cpus) in enumerate(
                            zip(runs, cpu_shares(len(runs)), strict=True)
                        )
                    )
                )
            )
    finally:
        reports.put(None)
        await showing


_reports: Queue[tuple[int, str, int] | None] | None = None  # in a run's own process


def _report_to(reports: Queue[tuple[int, str, int] | None]) -> None:
    global _reports
    _reports = reports


def cpu_shares(runs: int) -> list[set[int] | None]:
    """The CPUs each of `runs` side-by-side runs keeps to, dealt out in turn (all of them
    to each when there are fewer CPUs than runs); None where the OS cannot pin a process.

    Left to the scheduler, the runs' threads and test servers (each run has a worker's
    threads, the SDK core's and the server's, handing work to one another thousands of
    times a second) move between the cores and wake each other across them, which costs
    CPU, most of it in the kernel (docs/benchmarks.md)."""
    if not hasattr(os, "sched_setaffinity"):
        return [None] * runs
    cpus = sorted(os.sched_getaffinity(0))
    return [set(cpus[index::runs]) or set(cpus) for index in range(runs)]


def _run_alone(index: int, run: PlanRun, cpus: set[int] | None) -> dict[str, Any]:
    """In a run's own process: the run, on its share of the CPUs, with its progress sent
    to the calling process. A failure goes back as a RuntimeError with the run's own
    traceback in its message: the errors a run meets most (the SDK's RPCError,
    WorkflowFailureError) cannot be unpickled, and the pool would report only a broken
    process in their stead."""
    if cpus is not None:
        # Before the run starts a thread or its test server: both inherit the CPUs.
        os.sched_setaffinity(0, cpus)

    def report(doing: str, days: int) -> None:
        assert _reports is not None
        _reports.put((index, doing, days))

    try:
        return asyncio.run(_run_plan(run, report))
    except Exception as error:
        raise RuntimeError(f"{run.plan.label}: {error!r}\n{traceback.format_exc()}") from None


async def _run_plan(run: PlanRun, report: ProgressReport) -> dict[str, Any]:
    # A run's process is a worker's for minutes, its code loaded: collected as one.
    tune_collector()
    with tempfile.TemporaryDirectory(prefix="tandem-simulation-") as tmp:
        # Thousands of emails no one reads: kept in the records only, no .eml files.
        settings = Settings(
            var_dir=Path(tmp),
            database_url=None,
            smtp_host=None,
            email_files=False,
            plans_dir=None,
        )
        engine = records_engine(settings)
        upgrade(engine)
        try:
            async with _server() as server:
                await ensure_search_attributes(server.client, "default")
                clock = await SimulatedClock.of(server)
                cohort = CohortRun(
                    clock=clock,
                    engine=engine,
                    plan=run.plan,
                    accounts=make_cohort(run.seed, run.customers, run.prefix),
                    seed=run.seed,
                    months=run.months,
                    task_queue=f"simulation-{run.prefix}",
                    report=report,
                )
                async with build_worker(clock.client, settings, engine, cohort.task_queue):
                    await cohort.run()
            summary = summarize(cohort)
        finally:
            engine.dispose()
        if run.keep is not None:
            _copy_sqlite(Path(tmp) / "tandem.db", run.keep)
    return summary


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's own backup, so the copy includes what is still in the WAL."""
    target.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
