"""Each benchmark at its smallest size, on the real servers: it completes and produces its
numbers. Nothing here asserts on wall-clock time: that is what the benchmarks report."""

from __future__ import annotations

import json
from pathlib import Path

from bench import __main__ as bench_main
from bench import idle, simulated_time
from bench.common import BenchResult, percentile


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
    measured(results[0], ["throughput", "p50 latency", "p99 latency", "p50 latency, one at a time"])
    written = json.loads(out.read_text())
    assert written["size"] == "smoke" and written["machine"]["cpus"] >= 1
    assert [r["name"] for r in written["results"]] == ["signup"]
    assert {m["name"] for m in written["results"][0]["metrics"]} == {
        "throughput",
        "p50 latency",
        "p99 latency",
        "p50 latency, one at a time",
    }
    assert all(m["met"] in (True, False) for m in written["results"][0]["metrics"][:2])


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
