"""Task completion, the whole round trip: HTTP → the lifecycle's update → the result
recorded → the response.

Signs up `2 * (count + warmup)` customers through their real lifecycles and waits for
their kickoff tasks. Then, one at a time and taken in turn:

- Tandem over HTTP: POST /tasks/{id}/complete with a kickoff result (the one
  `tandem result-example kickoff` prints), to the API under uvicorn in a process of its
  own, which checks the token and the task, and calls the lifecycle's `complete_task`
  update; that validates the result, records it (one activity writing the task and the
  success plan) and answers once it is stored.
- Tandem without HTTP: `lifecycles.complete_task` from this process, the same update on
  the other half of the customers: what the API adds is the difference.
- Baseline: a bare update on a bare workflow (`bench.baseline`'s `acknowledge`, which runs
  one no-op activity, as Tandem's runs one recording activity), on workflows started
  beforehand.

The Tandem worker (`tandem worker`) and the bare worker run as processes of their own
with the same settings; one dev server (in memory). Records: SQLite (the default, as
`make run` keeps them), shared by the worker and the API.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from temporalio.client import Client

from bench.apiproc import api_process
from bench.baseline import BareInput, BareLifecycle
from bench.common import (
    BenchResult,
    Metric,
    Process,
    dev_server,
    percentile,
    run_bounded,
    say,
    tandem_settings,
    wait_until_idle,
    workdir,
    worker_env,
)
from db.engine import make_engine
from db.migrate import upgrade
from db.staff import add_staff
from db.tokens import create_token
from lifecycles import complete_task, sign_up
from models.customer import SignUp
from models.tables import TaskRecord
from models.tasks import TaskCompletion, TaskKind, example_result
from plans import load_plan

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"count": 5, "warmup": 2},
    "default": {"count": 200, "warmup": 10},
    "full": {"count": 1000, "warmup": 20},
}
QUEUE = "bench-completion"
BARE_QUEUE = "bench-completion-bare"
MANAGER = "sam@team.test"
SIGNUP_CONCURRENCY = 20


def _customer(index: int) -> SignUp:
    return SignUp(
        company=f"Completion {index}",
        contact_name="Ada Bench",
        email=f"ada.{index}@completion.test",
        plan="default",
    )


def _kickoffs(engine: Engine, status: str | None = None) -> int:
    query = select(func.count()).select_from(TaskRecord).where(TaskRecord.kind == "kickoff")
    if status:
        query = query.where(col(TaskRecord.status) == status)
    with Session(engine) as session:
        return session.exec(query).one()


async def _prepare(client: Client, engine: Engine, customers: int, bare: int) -> list[str]:
    """The lifecycles with their kickoff task open, and the bare workflows running."""
    plan = load_plan("default")
    in_flight = min(SIGNUP_CONCURRENCY, customers)
    say(f"task_completion: signing up {customers} customers, {in_flight} in flight")
    await run_bounded(
        customers,
        SIGNUP_CONCURRENCY,
        lambda i: sign_up(client, _customer(i), plan, QUEUE),
        "sign-ups",
        max(1, customers // 4),
    )
    deadline = time.monotonic() + 600
    while _kickoffs(engine) < customers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_kickoffs(engine)} of {customers} kickoff tasks opened")
        await asyncio.sleep(0.5)
    ids = [f"bare-completion-{i}" for i in range(bare)]
    for workflow_id in ids:
        await client.start_workflow(
            BareLifecycle.run, BareInput(), id=workflow_id, task_queue=BARE_QUEUE
        )
    return ids


async def _measure(
    client: Client, base: str, token: str, bare_ids: list[str], count: int, warmup: int
) -> tuple[list[float], list[float], list[float]]:
    """Returns the latencies (s) of the bare update, Tandem over HTTP, Tandem direct."""
    result = example_result(TaskKind.kickoff)
    bare: list[float] = []
    over_http: list[float] = []
    direct: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
        for i in range(warmup + count):
            if i == warmup:
                say(f"task_completion: {count} of each, one at a time, taken in turn")
            elif i > warmup and (i - warmup) % max(1, count // 5) == 0:
                say(f"task_completion: {i - warmup}/{count}")
            started = time.perf_counter()
            handle = client.get_workflow_handle_for(BareLifecycle.run, bare_ids[i])
            await handle.execute_update(BareLifecycle.acknowledge)
            elapsed_bare = time.perf_counter() - started

            task_id = f"{_customer(2 * i).customer_id}:t1:kickoff"
            started = time.perf_counter()
            response = await http.post(
                f"/tasks/{task_id}/complete", json={"result": result}, headers=headers
            )
            elapsed_http = time.perf_counter() - started
            if response.status_code != 200 or response.json().get("task_id") != task_id:
                raise RuntimeError(f"{task_id}: {response.status_code} {response.text[:300]}")

            completion = TaskCompletion(
                task_id=f"{_customer(2 * i + 1).customer_id}:t1:kickoff",
                completed_by=MANAGER,
                result=result,
            )
            started = time.perf_counter()
            await complete_task(client, completion)
            elapsed_direct = time.perf_counter() - started
            if i >= warmup:
                bare.append(elapsed_bare)
                over_http.append(elapsed_http)
                direct.append(elapsed_direct)
    return bare, over_http, direct


async def run(count: int, warmup: int) -> BenchResult:
    result = BenchResult(
        "task_completion",
        {"count": count, "warmup": warmup, "records": "sqlite", "server_db": "memory"},
    )
    started = time.perf_counter()
    customers = 2 * (count + warmup)
    with workdir("completion") as tmp:
        async with dev_server(tmp) as env:
            client = env.client
            address = client.service_client.config.target_host
            var_dir = tmp / "var"
            engine = make_engine(tandem_settings(var_dir).resolved_database_url)
            upgrade(engine)
            add_staff(engine, "Bench manager", MANAGER, "manager", actor="bench")
            _, token = create_token(engine, "Bench manager", MANAGER)
            tandem_args = [str(Path(sys.executable).parent / "tandem"), "worker"]
            bare_args = [
                sys.executable, "-m", "bench.bare_worker",
                "--address", address, "--task-queue", BARE_QUEUE,
            ]  # fmt: skip
            worker = Process(tandem_args, worker_env(address, var_dir, QUEUE), tmp / "worker.log")
            bare_worker = Process(
                bare_args, worker_env(address, var_dir, BARE_QUEUE), tmp / "bare.log"
            )
            try:
                await worker.wait_for_output("Worker polling")
                await bare_worker.wait_for_output("Worker polling")
                async with api_process(
                    worker_env(address, var_dir, QUEUE), tmp / "api.log"
                ) as base:
                    bare_ids = await _prepare(client, engine, customers, count + warmup)
                    waited = await wait_until_idle(worker.pid)
                    say(f"task_completion: worker idle after {waited:.0f} s")
                    load_before = os.getloadavg()[0]
                    bare, over_http, direct = await _measure(
                        client, base, token, bare_ids, count, warmup
                    )
                    # Others may share the machine: its load says how much the tails mean.
                    result.notes.append(
                        f"load average (1 min) {load_before:.1f} before, "
                        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs"
                    )
                done = _kickoffs(engine, "done")
            finally:
                worker.stop()
                bare_worker.stop()
                engine.dispose()
    if done != customers:
        raise RuntimeError(f"{done} of {customers} kickoff tasks recorded as done")
    result.params["completed"] = done
    _report(result, bare, over_http, direct)
    result.seconds = time.perf_counter() - started
    return result


def _report(
    result: BenchResult, bare: list[float], over_http: list[float], direct: list[float]
) -> None:
    for name, ours in (("round trip over HTTP", over_http), ("update without HTTP", direct)):
        for share in (0.5, 0.99):
            result.metrics.append(
                Metric(
                    f"{name} p{round(share * 100)}",
                    "ms",
                    1000 * percentile(ours, share),
                    1000 * percentile(bare, share),
                )
            )
    http50, direct50, bare50 = (1000 * percentile(v, 0.5) for v in (over_http, direct, bare))
    note = (
        f"p50: HTTP round trip {http50:.1f} ms, the update alone {direct50:.1f} ms, "
        f"the bare update {bare50:.1f} ms"
    )
    result.notes.append(note)
    say(f"task_completion: {note}")
