"""Benchmarks: each measures Tandem and a baseline in the same run, on the same servers
with the same worker settings, and reports the ratio. `python -m bench`; method and
figures in docs/benchmarks.md.

Adding one (say `bench/ingestion.py`):

1. Write the module: a docstring whose first line says what it measures (it becomes the
   `--help` heading), then what its baseline is and its targets; `SIZES`, a dict from
   "smoke", "default" and "full" to the keyword arguments of `run`, all ints (each
   becomes an option, `--ingestion-events N`); and
   `async def run(**size) -> BenchResult` (add `persist_server: bool = False` if it
   uses the dev server and should honour `--persist-server`).
2. In `run`, start what it needs from `bench.common` (`dev_server`, `worker_processes`
   with `tandem_worker_args` / `bare_worker_args`, `run_bounded`, `cpu_seconds`,
   `workdir`) and return `BenchResult(name, params)` with one `Metric(name, unit,
   tandem, baseline, target)` per figure; set `metric.met` where there is a target.
   Raise on anything wrong: the runner reports the benchmark as failed and goes on.
3. Register it in `BENCHMARKS` in `bench/__main__.py`, and give it a smoke test in
   tests/test_bench_smoke.py (its metrics' names, all measured, nothing about time).
4. Describe its method and baseline in docs/benchmarks.md, with the figures measured.
"""
