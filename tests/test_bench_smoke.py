"""Each benchmark at its smallest size, on the real servers: it completes and produces its
numbers. Nothing here asserts on wall-clock time: that is what the benchmarks report."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from bench import __main__ as bench_main
from bench import (
    api_reads,
    idle,
    segment_ingest,
    signup,
    simulated_time,
    simulation,
    task_completion,
)
from bench.common import BenchResult, Metric, machine, percentile
from bench.pgdb import admin_url, libpq_url
from tests.conftest import POSTGRES_URL, need_postgres


def measured(result: BenchResult, names: list[str]) -> None:
    assert [m.name for m in result.metrics] == names
    for metric in result.metrics:
        assert metric.tandem is not None and metric.tandem > 0, metric
        assert metric.baseline is not None and metric.baseline > 0, metric
        assert metric.ratio is not None


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert percentile([3.0], 0.99) == 3.0


def test_signup_through_the_command_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    results = bench_main.main(["--size", "smoke", "--only", "signup", "--out", str(out)])
    names = signup.metric_names(signup.SIZES["smoke"]["workers"])
    measured(results[0], names)
    written = json.loads(out.read_text())
    assert written["size"] == "smoke" and written["machine"]["cpus"] >= 1
    assert [r["name"] for r in written["results"]] == ["signup"]
    assert [m["name"] for m in written["results"][0]["metrics"]] == names
    judged = [m["name"] for m in written["results"][0]["metrics"] if m["met"] is not None]
    assert judged == [
        "CPU per sign-up, 1 worker",
        "throughput, 1 worker",
        "CPU per sign-up, 2 workers",
        "throughput, 2 workers",
    ]


async def test_idle_smoke() -> None:
    result = await idle.run(**idle.SIZES["smoke"])
    measured(
        result,
        [
            "worker RSS",
            "worker peak RSS",
            "server RSS",
            "history events / lifecycle",
            "history size / lifecycle",
            "start rate",
        ],
    )
    assert result.metric("worker RSS").met in (True, False)


async def test_simulated_time_smoke() -> None:
    result = await simulated_time.run(**simulated_time.SIZES["smoke"])
    size = simulated_time.SIZES["smoke"]["concurrent"]
    measured(result, ["customer-year, sequential", f"customer-year, {size} at once"])


async def test_simulation_smoke() -> None:
    result = await simulation.run(**simulation.SIZES["smoke"])
    measured(result, ["customer-years a minute", "CPU a customer-year"])
    assert result.metric("customer-years a minute").met in (True, False)


async def test_api_reads_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    need_postgres()
    # One setting points the whole suite, the benchmarks' databases too, at a server.
    monkeypatch.setenv("TANDEM_BENCH_POSTGRES_URL", POSTGRES_URL)
    size = api_reads.SIZES["smoke"]
    result = await api_reads.run(**size)
    names = []
    for endpoint in api_reads.ENDPOINTS:
        names += [f"{endpoint} p50", f"{endpoint} p99"]
    measured(result, [*names, "portfolio p50", "portfolio p95", "portfolio p99"])
    # Every request answered 200 with a body (the benchmark raises otherwise): four per
    # round, and the portfolio every `portfolio_every`-th round.
    rounds = range(size["warmup"], size["warmup"] + size["requests"])
    portfolio = sum(1 for i in rounds if i % size["portfolio_every"] == 0)
    assert result.params["responses_200"] == 4 * len(rounds) + portfolio
    assert sum(m.met is not None for m in result.metrics) == 5  # the targets are judged
    assert f"{size['customers']:,} customer" in result.notes[0]
    assert f"{size['signals']:,} signal" in result.notes[0]
    with psycopg.connect(libpq_url(admin_url())) as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname = %s", [result.params["database"]]
        ).fetchall()
    assert left == []  # the benchmark's database is dropped


async def test_task_completion_smoke() -> None:
    size = task_completion.SIZES["smoke"]
    result = await task_completion.run(**size)
    measured(
        result,
        [
            "round trip over HTTP p50",
            "round trip over HTTP p99",
            "update without HTTP p50",
            "update without HTTP p99",
        ],
    )
    # Every kickoff of the sign-ups was completed, half over HTTP (200 with the receipt)
    # and half through the update directly.
    assert result.params["completed"] == 2 * (size["count"] + size["warmup"])


async def test_segment_ingest_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    need_postgres()
    monkeypatch.setenv("TANDEM_BENCH_POSTGRES_URL", POSTGRES_URL)
    result = await segment_ingest.run(**segment_ingest.SIZES["smoke"])
    # Every event sent was rolled up once (the benchmark raises otherwise).
    assert [m.name for m in result.metrics][:2] == ["ingestion rate", "ingestion rate"]
    assert all(m.tandem and m.tandem > 0 for m in result.metrics)
    assert result.metrics[0].baseline and result.metrics[0].met is not None


def test_a_failing_benchmark_is_reported_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def benchmark(name: str, fails: bool) -> ModuleType:
        module = ModuleType(f"bench.{name}", f"{name}: a benchmark of this test.")

        async def run(count: int) -> BenchResult:
            if fails:
                raise RuntimeError("h2 protocol error")
            result = BenchResult(name, {"count": count})
            result.metrics.append(Metric("speed", "ops/s", 2.0 * count, 1.0 * count))
            return result

        module.SIZES = {size: {"count": 3} for size in ("smoke", "default", "full")}  # type: ignore[attr-defined]
        module.run = run  # type: ignore[attr-defined]
        return module

    monkeypatch.setattr(
        bench_main,
        "BENCHMARKS",
        {"first": benchmark("first", True), "second": benchmark("second", False)},
    )
    out = tmp_path / "results.json"
    results = bench_main.main(["--size", "smoke", "--second-count", "5", "--out", str(out)])
    assert [(r.name, r.error) for r in results] == [
        ("first", "RuntimeError: h2 protocol error"),
        ("second", None),
    ]
    assert results[1].metrics[0].ratio == 2.0 and results[1].params == {"count": 5}
    written = json.loads(out.read_text())["results"]
    assert written[0]["error"] == "RuntimeError: h2 protocol error" and written[0]["metrics"] == []
    assert "FAILED: RuntimeError: h2 protocol error" in bench_main.markdown(results, machine())
