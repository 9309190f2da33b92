"""`python -m bench` (`make bench`): every benchmark in sequence, each against its
baseline in the same run; a results table at the end and var/bench/results.json.

    python -m bench --size smoke|default|full [--only signup,idle,...] [--signup-count 500]

Each of a benchmark's sizes can be overridden by an option named for it (`--help` lists
them). A benchmark that fails is reported as failed, with its error, and the others still
run; the exit status is then 1. Missed targets are reported, not failed: a benchmark
measures, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import (
    api_reads,
    idle,
    segment_ingest,
    signup,
    simulated_time,
    simulation,
    task_completion,
)
from bench.common import BenchResult, machine, say

# name -> module with SIZES and `async def run(**size) -> BenchResult` (bench/__init__.py).
BENCHMARKS: dict[str, ModuleType] = {
    "signup": signup,
    "idle": idle,
    "simulated_time": simulated_time,
    "api_reads": api_reads,
    "task_completion": task_completion,
    "segment_ingest": segment_ingest,
    "simulation": simulation,
}
SIZES = ["smoke", "default", "full"]


def _option(name: str, key: str) -> str:
    return f"--{name}-{key}".replace("_", "-")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", choices=SIZES, default="default")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated, of: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--out", type=Path, default=Path("var/bench/results.json"))
    parser.add_argument(
        "--persist-server",
        action="store_true",
        help="the dev server keeps its SQLite file on disk, as `make run` does (default: in "
        "memory, start_local's default); for the benchmarks on the dev server",
    )
    for name, module in BENCHMARKS.items():
        summary = (module.__doc__ or name).strip().splitlines()[0]
        group = parser.add_argument_group(name, summary)
        for key, value in module.SIZES["default"].items():
            sizes = ", ".join(f"{size} {module.SIZES[size][key]:,}" for size in SIZES)
            group.add_argument(
                _option(name, key), type=type(value), dest=f"{name}.{key}", metavar="N", help=sizes
            )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def size_of(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The benchmark's parameters: its size, with the options given on the command line."""
    module = BENCHMARKS[name]
    size = dict(module.SIZES[args.size])
    for key in size:
        given = getattr(args, f"{name}.{key}")
        if given is not None:
            size[key] = given
    if "persist_server" in inspect.signature(module.run).parameters:
        size["persist_server"] = args.persist_server
    return size


async def run_one(name: str, size: dict[str, Any]) -> BenchResult:
    """One benchmark; its failure becomes its result, so the next one still runs."""
    started = time.perf_counter()
    try:
        result: BenchResult = await BENCHMARKS[name].run(**size)
    except Exception as error:
        traceback.print_exc()
        result = BenchResult(name, size, error=f"{type(error).__name__}: {error}")
        result.seconds = time.perf_counter() - started
        say(f"== {name} FAILED after {result.seconds:.0f} s: {result.error}")
        return result
    outcome = "done" if result.error is None else f"FAILED part way: {result.error}"
    say(f"== {name} {outcome} in {result.seconds:.0f} s")
    return result


async def run_all(args: argparse.Namespace) -> list[BenchResult]:
    results = []
    for name in [b for b in BENCHMARKS if b in args.only.split(",")]:
        say(f"== {name} ({args.size})")
        results.append(await run_one(name, size_of(args, name)))
    return results


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def _rows(result: BenchResult) -> list[list[str]]:
    """One row per metric: metric (unit), Tandem, baseline, ratio, target, met; then
    the failure, if it failed (a benchmark may keep what it measured before)."""
    failed = [] if result.error is None else [[f"FAILED: {result.error}", *"----", "NO"]]
    return [
        [
            f"{m.name} ({m.unit})",
            _number(m.tandem),
            _number(m.baseline),
            f"{m.ratio:.2f}x" if m.ratio is not None else "-",
            m.target or "-",
            _met(m.met) or "-",
        ]
        for m in result.metrics
    ] + failed


def table(results: list[BenchResult]) -> Table:
    # The baseline is a bare Temporal workflow, or for api_reads the database's own
    # EXPLAIN (ANALYZE) time of the same statements.
    grid = Table(
        "benchmark", "metric", "Tandem", "baseline", "ratio", "target", "met",
        title="Tandem vs its baseline",
    )  # fmt: skip
    for result in results:
        for row in _rows(result):
            grid.add_row(result.name, *map(escape, row))
    return grid


def markdown(results: list[BenchResult], about: dict[str, Any]) -> str:
    lines = [
        f"Measured {about['date']} on {about['cpus']} CPUs ({about['cpu_model']}), "
        f"{about['memory_gib']} GiB, Python {about['python']}, temporalio "
        f"{about['temporalio']}; load average {about['loadavg_1m']} at the end.",
        "",
        "| benchmark | metric | Tandem | baseline | ratio | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for result in results:
        for row in _rows(result):
            lines.append(f"| {result.name} | " + " | ".join(row) + " |")
    lines.append("")
    for result in results:
        params = ", ".join(f"{k}={v}" for k, v in result.params.items())
        lines.append(f"- {result.name}: {params} ({result.seconds:.0f} s)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[BenchResult]:
    args = parse(argv)
    started = time.perf_counter()
    results = asyncio.run(run_all(args))
    about = machine()
    console = Console(width=160)  # a results table, not a terminal UI: never squeeze it
    console.print(table(results))
    for result in results:
        for note in result.notes:
            console.print(f"note ({result.name}): {escape(note)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": about, "size": args.size, "results": [r.as_dict() for r in results]},
            indent=2,
        )
        + "\n"
    )
    print(f"\nMarkdown:\n\n{markdown(results, about)}\n", flush=True)
    say(f"wrote {args.out} ({time.perf_counter() - started:.0f} s in all)")
    return results


if __name__ == "__main__":
    sys.exit(1 if any(r.error is not None for r in main()) else 0)
