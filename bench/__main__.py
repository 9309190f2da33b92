"""`python -m bench` (`make bench`): every benchmark in sequence, each against its
baseline in the same run; a results table at the end and var/bench/results.json.

    python -m bench --size smoke|default|full [--only signup,idle,...] ...

Missed targets are reported, not failed: a benchmark measures, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import api_reads, idle, signup, simulated_time, task_completion
from bench.common import BenchResult, machine, say

BENCHMARKS = ["signup", "idle", "simulated_time", "api_reads", "task_completion"]
SIZES = ["smoke", "default", "full"]


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
        help="the dev server keeps its SQLite file on disk, as `make run` "
        "does (default: in memory, start_local's default)",
    )
    group = parser.add_argument_group("signup")
    group.add_argument("--signup-count", type=int)
    group.add_argument("--signup-concurrency", type=int)
    group.add_argument("--signup-warmup", type=int)
    group.add_argument("--signup-rounds", type=int, help="alternating batches of each side")
    group.add_argument("--signup-serial", type=int, help="sign-ups one at a time, for latency")
    group = parser.add_argument_group("idle")
    group.add_argument("--idle-count", type=int)
    group.add_argument("--idle-concurrency", type=int)
    group = parser.add_argument_group("simulated_time")
    group.add_argument("--years-sequential", type=int)
    group.add_argument("--years-concurrent", type=int)
    group = parser.add_argument_group("api_reads (needs PostgreSQL: TANDEM_BENCH_POSTGRES_URL)")
    group.add_argument("--api-customers", type=int)
    group.add_argument("--api-signals", type=int)
    group.add_argument("--api-requests", type=int, help="rounds of one request per endpoint")
    group = parser.add_argument_group("task_completion")
    group.add_argument("--completion-count", type=int)
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def _pick(size: dict[str, int], **overrides: int | None) -> dict[str, int]:
    return {**size, **{k: v for k, v in overrides.items() if v is not None}}


async def run_all(args: argparse.Namespace) -> list[BenchResult]:
    chosen = [b for b in BENCHMARKS if b in args.only.split(",")]
    results = []
    for name in chosen:
        say(f"== {name} ({args.size})")
        if name == "signup":
            p = _pick(
                signup.SIZES[args.size],
                count=args.signup_count,
                concurrency=args.signup_concurrency,
                warmup=args.signup_warmup,
                rounds=args.signup_rounds,
                serial=args.signup_serial,
            )
            results.append(await signup.run(**p, persist_server=args.persist_server))
        elif name == "idle":
            p = _pick(
                idle.SIZES[args.size], count=args.idle_count, concurrency=args.idle_concurrency
            )
            results.append(await idle.run(**p, persist_server=args.persist_server))
        elif name == "simulated_time":
            p = _pick(
                simulated_time.SIZES[args.size],
                sequential=args.years_sequential,
                concurrent=args.years_concurrent,
            )
            results.append(await simulated_time.run(**p))
        elif name == "api_reads":
            p = _pick(
                api_reads.SIZES[args.size],
                customers=args.api_customers,
                signals=args.api_signals,
                requests=args.api_requests,
            )
            results.append(await api_reads.run(**p))
        else:
            p = _pick(task_completion.SIZES[args.size], count=args.completion_count)
            results.append(await task_completion.run(**p))
        say(f"== {name} done in {results[-1].seconds:.0f} s")
    return results


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def table(results: list[BenchResult]) -> Table:
    grid = Table(
        "benchmark",
        "metric",
        "unit",
        "Tandem",
        "baseline",
        "ratio",
        "target",
        "met",
        # The baseline is a bare Temporal workflow, or for api_reads the database's own
        # EXPLAIN (ANALYZE) time of the same statements.
        title="Tandem vs its baseline",
    )
    for result in results:
        for m in result.metrics:
            grid.add_row(
                result.name,
                m.name,
                m.unit,
                _number(m.tandem),
                _number(m.baseline),
                _number(m.ratio) + ("x" if m.ratio is not None else ""),
                m.target,
                _met(m.met),
            )
    return grid


def markdown(results: list[BenchResult], about: dict[str, Any]) -> str:
    lines = [
        f"Measured {about['date']} on {about['cpus']} CPUs, {about['memory_gib']} GiB, "
        f"Python {about['python']}, temporalio {about['temporalio']}.",
        "",
        "| benchmark | metric | Tandem | baseline | ratio | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        for m in r.metrics:
            ratio = f"{m.ratio:.2f}x" if m.ratio is not None else "-"
            lines.append(
                f"| {r.name} ({params}) | {m.name} ({m.unit}) | {_number(m.tandem)} | "
                f"{_number(m.baseline)} | {ratio} | {m.target or '-'} | {_met(m.met) or '-'} |"
            )
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
            console.print(f"note ({result.name}): {note}")
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
    main()
