"""Product events in: sustained ingestion of Segment batches into PostgreSQL.

Tandem: the API under uvicorn as deployed (its worker processes, bench/apiproc.py), on a
database of its own with `accounts` accounts; this process posts `events` track calls in
`/v1/batch` requests of `batch` calls (bodies made beforehand), `concurrency` requests in
flight, as a Segment pipeline would. Each request is authenticated, validated, attributed
to its account, stored (idempotent by messageId) and rolled up into the daily counts
before its 200.

The load generator is kept light: `concurrency` threads, each with one keep-alive
HTTP/1.1 connection of the standard library's http.client, posting the bodies as they
are. On a machine of 2 CPUs, every microsecond the client spends is taken from the API
and PostgreSQL being measured; an asyncio client such as httpx spends about four times
as much CPU per request as http.client, and slowed Tandem down for reasons not its own.

Baseline: a bare psycopg `executemany` of the same rows (the same columns and values,
new message ids) into the same table, one transaction per batch, on one connection; and
for comparison (no target), the same on `concurrency` connections at once, as many as
Tandem has requests in flight.
Rounds alternate Tandem and the baseline, so a machine whose load changes weighs on both.

Targets: Tandem at no less than half the baseline's rate, and at least 5,000 events/s.
Also CPU per event (no target), which a machine's load from other processes changes far
less than the rates: Tandem's API process and database backends, against the bare
executemany's client and backend.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from sqlmodel import Session

from bench.apiproc import API_PROCESSES, api_process
from bench.common import BenchResult, Metric, cpu_seconds, say, tree_cpu_seconds, workdir
from bench.pgdb import bench_database, libpq_url
from db.engine import make_engine
from db.migrate import upgrade
from db.sources import create_source
from models.tables import Customer

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"events": 5_000, "batch": 100, "concurrency": 4, "accounts": 20, "rounds": 1},
    "default": {"events": 30_000, "batch": 100, "concurrency": 4, "accounts": 500, "rounds": 3},
    "full": {"events": 200_000, "batch": 100, "concurrency": 4, "accounts": 2000, "rounds": 3},
}
EVENT_NAMES = [
    "Report Created", "Report Shared", "Dashboard Viewed", "Invite Sent", "Export Run",
    "Integration Connected", "Comment Added", "Search Run", "Filter Applied", "Login",
]  # fmt: skip
T = TypeVar("T")
USERS_PER_ACCOUNT = 25
COLUMNS = (
    "message_id", "source_id", "type", "event", "user_key", "group_id", "customer_id",
    "occurred_at", "received_at", "payload",
)  # fmt: skip


def _call(rng: random.Random, account: int, at: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "event": rng.choice(EVENT_NAMES),
        "userId": f"user-{account}-{rng.randrange(USERS_PER_ACCOUNT)}",
        "messageId": str(uuid.uuid4()),
        "timestamp": (at - timedelta(seconds=rng.randrange(86_400))).isoformat(),
        "properties": {"plan": "pro", "items": rng.randrange(100), "source": "web"},
        "context": {
            "groupId": f"crm-{account}",
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "ip": "203.0.113.7",
        },
    }


def _bodies(rng: random.Random, accounts: int, events: int, batch: int) -> list[bytes]:
    at = datetime.now(UTC)
    calls = [_call(rng, rng.randrange(accounts), at) for _ in range(events)]
    return [
        json.dumps({"batch": calls[i : i + batch], "sentAt": at.isoformat()}).encode()
        for i in range(0, events, batch)
    ]


def _rows(body: bytes, source_id: int) -> list[tuple[Any, ...]]:
    """The rows Tandem stores for a body, with message ids of their own."""
    now = datetime.now(UTC)
    rows = []
    for call in json.loads(body)["batch"]:
        account = call["context"]["groupId"].removeprefix("crm-")
        payload = json.dumps(call, separators=(",", ":"))
        rows.append(
            (str(uuid.uuid4()), source_id, "track", call["event"], call["userId"],
             call["context"]["groupId"], f"acct-{account}",
             datetime.fromisoformat(call["timestamp"]), now, payload)
        )  # fmt: skip
    return rows


def _accounts(url: str, accounts: int) -> tuple[int, str]:
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        for n in range(accounts):
            session.add(
                Customer(
                    id=f"acct-{n}", company=f"Account {n}", contact_name="Ada",
                    email=f"ada@acct-{n}.test", external_id=f"crm-{n}", plan_name="default",
                    plan_version=1, phase="adopting", term_start=now,
                    term_end=now + timedelta(days=365),
                )
            )  # fmt: skip
        session.commit()
    source, key = create_source(engine, "bench")
    engine.dispose()
    assert source.id is not None
    return source.id, key


def _dealer(items: list[T]) -> Callable[[], T | None]:
    """The next item no lane has taken yet (None when all are), for lanes on threads
    of their own: each takes the next one as soon as it is free, on both sides alike."""
    taken, lock = iter(items), threading.Lock()

    def take() -> T | None:
        with lock:
            return next(taken, None)

    return take


def _tandem_round(base: str, key: str, bodies: list[bytes], concurrency: int) -> float:
    """Post the bodies, `concurrency` at a time: each of as many threads keeps one
    HTTP/1.1 connection open and posts the next body not yet taken, as a Segment
    library's (requests, so urllib3 and http.client) sender threads do."""
    auth = base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    address = urlsplit(base)
    take = _dealer(bodies)

    def lane() -> None:
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=60)
        try:
            while (body := take()) is not None:
                connection.request("POST", "/v1/batch", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"/v1/batch answered {response.status}: {answer!r}")
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as lanes:
        for lane_done in [lanes.submit(lane) for _ in range(concurrency)]:
            lane_done.result()
    return time.perf_counter() - started


def _api_cpu(base: str) -> float:
    """CPU seconds of the uvicorn process serving `base` (found by the port on its
    command line) and of its worker processes."""
    return sum(tree_cpu_seconds(_listening_pid(base)).values())


def _listening_pid(base: str) -> int:
    """The uvicorn process serving `base`, found by the port on its command line."""
    wanted = ["--port", base.rsplit(":", 1)[1]]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if "api.main:create_app" in args and any(
                args[i : i + 2] == wanted for i in range(len(args))
            ):
                return int(pid)
    raise RuntimeError(f"no uvicorn process serves {base}")


def _baseline_round(
    url: str, source_id: int, bodies: list[bytes], concurrency: int
) -> tuple[float, float, float]:
    """`concurrency` connections, each taking the next batch: as many in flight as
    Tandem has requests in flight. Returns the seconds, and the CPU seconds of this
    process (the client) and of the connections' database backends."""
    batches = [_rows(body, source_id) for body in bodies]  # made before the clock starts
    statement = (
        f"INSERT INTO product_event ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )
    connections = [psycopg.connect(libpq_url(url)) for _ in range(concurrency)]
    take = _dealer(batches)

    def lane(connection: psycopg.Connection[Any]) -> None:
        while (rows := take()) is not None:
            with connection.cursor() as cursor:
                cursor.executemany(statement, rows)
            connection.commit()

    backends = [connection.info.backend_pid for connection in connections]
    try:
        cpu_before, client_before = _cpu(backends), time.process_time()
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lane, connections))
        seconds = time.perf_counter() - started
        return seconds, time.process_time() - client_before, _cpu(backends) - cpu_before
    finally:
        for connection in connections:
            connection.close()


def _backends(url: str) -> list[int]:
    """The database's backends (the API's pooled connections), this one's left out."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _cpu(pids: list[int]) -> float:
    """CPU seconds of the processes (PostgreSQL backends run on this machine)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a backend that has ended meanwhile
            total += cpu_seconds(pid)
    return total


def _stored(url: str) -> tuple[int, int]:
    with psycopg.connect(libpq_url(url)) as connection:
        events = connection.execute("SELECT count(*) FROM product_event").fetchone()
        counted = connection.execute(
            "SELECT coalesce(sum(count), 0) FROM usage_daily WHERE metric <> 'active_users'"
        ).fetchone()
    assert events is not None and counted is not None
    return int(events[0]), int(counted[0])


async def run(events: int, batch: int, concurrency: int, accounts: int, rounds: int) -> BenchResult:
    params = {"events": events, "batch": batch, "concurrency": concurrency, "accounts": accounts}
    result = BenchResult("segment_ingest", {**params, "rounds": rounds})
    started = time.perf_counter()
    rng = random.Random(18)
    tandem: list[float] = []
    bare: list[float] = []
    bare_parallel: list[float] = []
    api_cpu: list[float] = []  # processors the API's processes kept busy, while Tandem ran
    generator_cpu: list[float] = []  # this process's CPU per event, posting Tandem's load
    # CPU per event (s): Tandem's API processes and database backends; the bare
    # executemany's client (this process) and backend. The load of other processes
    # on the machine slows both sides' rates, but hardly their CPU per event.
    tandem_cpu: list[tuple[float, float]] = []
    bare_cpu: list[tuple[float, float]] = []
    with workdir("segment") as tmp, bench_database("segment") as url:
        source_id, key = _accounts(url, accounts)
        env = {**os.environ, "TANDEM_DATABASE_URL": url, "TANDEM_VAR_DIR": str(tmp / "var")}
        async with api_process(env, tmp / "api.log") as base:
            # A first small round warms the API (imports, pools, plan cache) unmeasured.
            warm_up = _bodies(rng, accounts, 10 * batch, batch)
            await asyncio.to_thread(_tandem_round, base, key, warm_up, concurrency)
            for n in range(rounds):
                bodies = _bodies(rng, accounts, events, batch)
                backends = _backends(url)
                cpu_before, pg_before = _api_cpu(base), _cpu(backends)
                generator_before = time.process_time()
                seconds = await asyncio.to_thread(_tandem_round, base, key, bodies, concurrency)
                generator_cpu.append((time.process_time() - generator_before) / events)
                api_seconds = _api_cpu(base) - cpu_before
                tandem_cpu.append((api_seconds / events, (_cpu(backends) - pg_before) / events))
                tandem.append(events / seconds)
                api_cpu.append(api_seconds / seconds)
                baseline, client_seconds, pg_seconds = await asyncio.to_thread(
                    _baseline_round, url, source_id, bodies, 1
                )
                bare_cpu.append((client_seconds / events, pg_seconds / events))
                bare.append(events / baseline)
                parallel, *_ = await asyncio.to_thread(
                    _baseline_round, url, source_id, bodies, concurrency
                )
                bare_parallel.append(events / parallel)
                say(
                    f"segment_ingest: round {n + 1}: {tandem[-1]:,.0f} events/s, bare "
                    f"executemany {bare[-1]:,.0f} (on {concurrency} connections "
                    f"{bare_parallel[-1]:,.0f})"
                )
        stored, counted = _stored(url)
    expected_tandem = (rounds * events) + 10 * batch  # the counted ones: Tandem's only
    if counted != expected_tandem:
        raise RuntimeError(f"{counted} events rolled up of {expected_tandem} sent")
    result.params["stored"] = stored
    rate, base_rate = median(tandem), median(bare)
    result.metrics.append(
        Metric(
            "ingestion rate", "events/s", rate, base_rate, ">= 0.5x bare executemany",
            rate >= 0.5 * base_rate,
        )
    )  # fmt: skip
    result.metrics.append(
        Metric("ingestion rate", "events/s", rate, None, ">= 5,000 events/s", rate >= 5000)
    )
    result.metrics.append(
        Metric(
            f"vs {concurrency} connections",
            "events/s",
            rate,
            median(bare_parallel),
        )
    )
    result.metrics.append(
        Metric(
            "CPU per event, API + database",
            "us",
            1e6 * median(api + pg for api, pg in tandem_cpu),
            1e6 * median(client + pg for client, pg in bare_cpu),
        )
    )
    api_us, pg_us = (1e6 * median(part) for part in zip(*tandem_cpu, strict=True))
    client_us, bare_pg_us = (1e6 * median(part) for part in zip(*bare_cpu, strict=True))
    result.notes.append(
        f"the API's {API_PROCESSES} processes used {median(api_cpu):.2f} processors while "
        f"ingesting (a Python process: at most about 1); CPU per event: the API {api_us:.0f} us "
        f"and its database backends {pg_us:.0f} us, against the executemany's client "
        f"{client_us:.0f} us and backend {bare_pg_us:.0f} us (Tandem's load generator, "
        f"the HTTP client, is left out: it is not Tandem's cost)"
    )
    result.notes.append(
        f"the load generator (this process's HTTP client) used "
        f"{1e6 * median(generator_cpu):.0f} us of CPU per event, on the same CPUs"
    )
    result.notes.append(
        f"load average (1 min) {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs"
    )
    result.seconds = time.perf_counter() - started
    return result
