"""The API's reads over a large book of accounts in PostgreSQL.

Bulk-loads (COPY, `bench.pgload`) `customers` accounts with `signals` signals, their
success plans and goals, assessments (quarterly over a year), tasks (open kickoffs,
renewals and playbooks, assigned to managers and reps; done ones), timeline and emails,
into a database of its own. The API runs under uvicorn in a process of its own; this
process is the load: one keep-alive httpx client on loopback, requests one at a time,
the endpoints taken in turn so a load that changes on a shared machine weighs on all.

- customer page      GET /customers/{id}, a random customer each time
- task inbox         GET /tasks as a manager (all open work), and as a rep (theirs or
                     nobody's), soonest due first
- filtered list      GET /customers?phase=&quadrant=, a random pair that has customers
- portfolio          GET /portfolio (every `portfolio_every`-th round: it is the heavy one)

Baseline: the database's own time for the same reads. The route's functions run in this
process on the same database with every statement captured; each statement (the token
lookup included) is run again under EXPLAIN (ANALYZE), and its planning plus execution
time summed per request, for `explain` sampled requests of each endpoint.
Targets: p99 < 50 ms for the customer page, the inbox and the filtered list; portfolio
p95 < 200 ms.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, event, func, make_url
from sqlmodel import Session, col, select

from api.deps import Principal, principal_for_token
from api.routes import customers, portfolio, tasks
from bench.apiproc import api_process
from bench.common import PROJECT_ROOT, BenchResult, Metric, percentile, say, workdir
from bench.pgdb import bench_database
from bench.pgload import OWNERS, load
from db.engine import make_engine
from db.queries import CustomerFilters
from db.staff import add_staff
from db.tokens import create_token
from models.tables import TaskRecord

SIZES: dict[str, dict[str, int]] = {
    "smoke": {
        "customers": 300, "signals": 3000, "requests": 20, "warmup": 3,
        "portfolio_every": 2, "explain": 3,
    },
    "default": {
        "customers": 100_000, "signals": 1_000_000, "requests": 1000, "warmup": 30,
        "portfolio_every": 5, "explain": 40,
    },
    "full": {
        "customers": 300_000, "signals": 3_000_000, "requests": 3000, "warmup": 50,
        "portfolio_every": 5, "explain": 100,
    },
}  # fmt: skip
ENDPOINTS = ("customer page", "task inbox, manager", "task inbox, rep", "filtered list")
PORTFOLIO = "portfolio"
TARGET_P99_MS = 50.0
TARGET_PORTFOLIO_P95_MS = 200.0
REP_TOKENS = 8
Read = Callable[[Session], object]


@dataclass
class Call:
    endpoint: str
    path: str
    token: str
    read: Read  # the route itself, for the EXPLAIN baseline


@dataclass
class Explained:
    milliseconds: float  # planning + execution, summed over the request's statements
    statements: int
    slowest: tuple[float, str]


def _tokens(engine: Engine) -> tuple[str, list[tuple[str, str]]]:
    add_staff(engine, "Bench manager", OWNERS[0], "manager", actor="bench")
    _, manager = create_token(engine, "Bench manager", OWNERS[0])
    # The reps with the most open work: a rep sees only their own tasks.
    with Session(engine) as session:
        busiest = session.exec(
            select(TaskRecord.assignee)
            .where(TaskRecord.owner_role == "rep", TaskRecord.status == "open")
            .where(col(TaskRecord.assignee).is_not(None))
            .group_by(col(TaskRecord.assignee))
            .order_by(func.count().desc(), col(TaskRecord.assignee))
            .limit(REP_TOKENS)
        ).all()
    reps = []
    for person in busiest:
        add_staff(engine, f"Bench {person}", person, "rep", actor="bench")
        reps.append((person, create_token(engine, f"Bench {person}", person)[1]))
    return manager, reps


def _principal(session: Session, token: str) -> Principal:
    principal = principal_for_token(session, token)
    assert principal is not None
    return principal


def _calls(
    ids: list[str], pairs: list[tuple[str, str]], manager: str, reps: list[tuple[str, str]],
    rounds: int, portfolio_every: int, rng: random.Random,
) -> list[list[Call]]:  # fmt: skip
    """Each round: one request of each endpoint (the portfolio every few rounds)."""
    plan = []
    for index in range(rounds):
        cid = rng.choice(ids)
        _, rep = rng.choice(reps)
        phase, quadrant = rng.choice(pairs)

        def page(s: Session, cid: str = cid) -> object:
            return customers.get_customer(cid, s, _principal(s, manager))

        def inbox(s: Session, token: str) -> object:
            return tasks.inbox(s, _principal(s, token), "open", None, None, None)

        def listed(s: Session, phase: str = phase, quadrant: str = quadrant) -> object:
            filters = CustomerFilters(phase=phase, quadrant=quadrant)
            return customers.list_customers(s, _principal(s, manager), filters, None, 50)

        def book(s: Session) -> object:
            return portfolio.portfolio(s, _principal(s, manager), 30, 90, None, None, None)

        calls = [
            Call(ENDPOINTS[0], f"/customers/{cid}", manager, page),
            Call(ENDPOINTS[1], "/tasks", manager, lambda s: inbox(s, manager)),
            Call(ENDPOINTS[2], "/tasks", rep, lambda s, rep=rep: inbox(s, rep)),
            Call(ENDPOINTS[3], f"/customers?phase={phase}&quadrant={quadrant}", manager, listed),
        ]
        if index % portfolio_every == 0:
            calls.append(Call(PORTFOLIO, "/portfolio", manager, book))
        plan.append(calls)
    return plan


async def _measure(base: str, plan: list[list[Call]], warmup: int) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=120.0) as http:

        async def get(call: Call) -> float:
            started = time.perf_counter()
            response = await http.get(call.path, headers={"Authorization": f"Bearer {call.token}"})
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{call.path}: {response.status_code} {response.text[:300]}")
            if not response.json():
                raise RuntimeError(f"{call.path}: an empty answer")
            return elapsed

        say(f"api_reads: warming up ({warmup} rounds)")
        for calls in plan[:warmup]:
            for call in calls:
                await get(call)
        measured = plan[warmup:]
        say(f"api_reads: {len(measured)} rounds of {', '.join(ENDPOINTS)} (+ {PORTFOLIO})")
        for index, calls in enumerate(measured, 1):
            for call in calls:
                latencies.setdefault(call.endpoint, []).append(await get(call))
            if index % max(1, len(measured) // 5) == 0:
                say(f"api_reads: {index}/{len(measured)} rounds")
    return latencies


class _Captured:
    """Every statement the engine runs while `on` (SQLAlchemy's cursor event)."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.on:
            self.statements.append((statement, params))

    def run(self, read: Read, session: Session) -> list[tuple[str, Any]]:
        self.statements, self.on = [], True
        try:
            read(session)
        finally:
            self.on = False
        return self.statements


def _explain(engine: Engine, calls: list[Call]) -> list[Explained]:
    captured = _Captured(engine)
    explained = []
    for call in calls:
        with Session(engine) as session:
            statements = captured.run(call.read, session)
            total, slowest = 0.0, (0.0, "")
            selects = [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]
            for statement, params in selects:
                plan = (
                    session.connection()
                    .exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params)
                    .scalar_one()
                )
                ms = float(plan[0]["Planning Time"]) + float(plan[0]["Execution Time"])
                total += ms
                slowest = max(slowest, (ms, " ".join(statement.split())[:160]))
            explained.append(Explained(total, len(selects), slowest))
    return explained


async def run(
    customers: int,
    signals: int,
    requests: int,
    warmup: int,
    portfolio_every: int,
    explain: int,
) -> BenchResult:
    result = BenchResult(
        "api_reads",
        {
            "customers": customers,
            "signals": signals,
            "requests": requests,
            "portfolio_every": portfolio_every,
            "explain": explain,
            "records": "postgresql",
        },
    )
    started = time.perf_counter()
    rng = random.Random(11)
    with workdir("api") as tmp, bench_database("api") as url:
        result.params["database"] = make_url(url).database
        book = load(url, customers, signals)
        result.notes.append(
            "loaded " + ", ".join(f"{n:,} {t}" for t, n in book.rows.items()) + f" in "
            f"{book.seconds:.0f} s"
        )
        engine = make_engine(url)
        try:
            manager, reps = _tokens(engine)
            plan = _calls(
                book.customer_ids, book.filters, manager, reps,
                warmup + requests, portfolio_every, rng,
            )  # fmt: skip
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")},
                "TANDEM_DATABASE_URL": url,
                "TANDEM_VAR_DIR": str(tmp / "var"),
                "PYTHONPATH": str(PROJECT_ROOT),
            }
            env.pop("DATABASE_URL", None)
            load_before = os.getloadavg()[0]
            async with api_process(env, tmp / "api.log") as base:
                latencies = await _measure(base, plan, warmup)
            # Others may share the machine: its load says how much the tails mean.
            result.notes.append(
                f"load average (1 min) {load_before:.1f} before the requests, "
                f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs"
            )
            say(f"api_reads: EXPLAIN (ANALYZE) of {explain} requests of each endpoint")
            measured = [c for calls in plan[warmup:] for c in calls]
            baseline = {
                name: _explain(engine, [c for c in measured if c.endpoint == name][:explain])
                for name in (*ENDPOINTS, PORTFOLIO)
            }
        finally:
            engine.dispose()
    result.params["responses_200"] = sum(len(v) for v in latencies.values())
    _report(result, latencies, baseline)
    result.seconds = time.perf_counter() - started
    return result


def _report(
    result: BenchResult, latencies: dict[str, list[float]], baseline: dict[str, list[Explained]]
) -> None:
    for name in (*ENDPOINTS, PORTFOLIO):
        ours = [1000 * s for s in latencies[name]]
        theirs = [e.milliseconds for e in baseline[name]]
        shares = (0.5, 0.95, 0.99) if name == PORTFOLIO else (0.5, 0.99)
        for share in shares:
            metric = Metric(
                f"{name} p{round(share * 100)}",
                "ms",
                percentile(ours, share),
                percentile(theirs, share),
            )
            if name == PORTFOLIO and share == 0.95:
                metric.target = f"< {TARGET_PORTFOLIO_P95_MS:.0f} ms"
                metric.met = metric.tandem is not None and metric.tandem < TARGET_PORTFOLIO_P95_MS
            elif name != PORTFOLIO and share == 0.99:
                metric.target = f"< {TARGET_P99_MS:.0f} ms"
                metric.met = metric.tandem is not None and metric.tandem < TARGET_P99_MS
            result.metrics.append(metric)
        slowest = max(baseline[name], key=lambda e: e.slowest[0])
        result.notes.append(
            f"{name}: {len(ours)} requests, p50 {percentile(ours, 0.5):.1f} ms; EXPLAIN "
            f"p50 {percentile(theirs, 0.5):.1f} ms over {slowest.statements} statements; "
            f"slowest statement {slowest.slowest[0]:.1f} ms: {slowest.slowest[1]}"
        )
        say(f"api_reads: {result.notes[-1]}")
