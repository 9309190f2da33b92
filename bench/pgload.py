"""A realistic book of accounts bulk-loaded with COPY into a benchmark's PostgreSQL database.

The schema comes from the project's own migrations (`db.migrate.upgrade`); the secondary
indexes are dropped for the load and rebuilt after it (one sort per index instead of a
B-tree insert per row), then every table is analysed, as a restored database would be.

The database itself comes from `bench.pgdb`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.common import say
from bench.pgdb import libpq_url
from db.engine import make_engine
from db.migrate import upgrade

OWNERS = [f"cs{n:02d}@team.test" for n in range(25)]
REPS = [f"rep{n:02d}@team.test" for n in range(40)]
PHASES = {"onboarding": 15, "adopting": 60, "renewal": 15, "churned": 10}
QUADRANTS = {
    "happy_profitable": 30,
    "unhappy_profitable": 12,
    "happy_unprofitable": 12,
    "unhappy_unprofitable": 8,
    "neutral": 23,
    "unknown": 15,
}
SIGNAL_KINDS = {
    "usage": 30, "revenue": 15, "cost": 10, "nps": 10, "csat": 10, "tickets": 10, "mrr": 5,
}  # fmt: skip
GOAL_KEYS = ("active_reps", "weekly_logins")
GOAL_SHARE = 0.15  # of the signals: measured values of the success plan's goals
ASSESSMENTS_PER_SCORED = 4  # quarterly check-ins over the last year
TIMELINE_PER_CUSTOMER = 4
EMAILS_PER_CUSTOMER = 2


@dataclass
class Book:
    """What was loaded, and what the load generator needs to ask for it."""

    customer_ids: list[str]
    filters: list[tuple[str, str]]  # (phase, quadrant) pairs that have customers
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _scores(rng: random.Random, quadrant: str) -> tuple[float | None, float | None]:
    if quadrant == "unknown":
        return None, None
    if quadrant == "neutral":
        # Neutral on the customer's axis; some of them very profitable: the risk list.
        return round(rng.uniform(-0.15, 0.15), 4), round(rng.uniform(-0.15, 0.9), 4)
    happy = rng.uniform(0.25, 1.0) * (1 if quadrant.startswith("happy") else -1)
    profit = rng.uniform(0.25, 1.0) * (1 if quadrant.endswith("_profitable") else -1)
    return round(happy, 4), round(profit, 4)


def _at(base: datetime, rng: random.Random, days: float) -> datetime:
    return base - timedelta(seconds=rng.uniform(0, days * 86400))


class _Writer:
    """Rows per table, handed to COPY as they are made: the book is never all in memory."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self.rows: dict[str, int] = {}

    def copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        started = time.perf_counter()
        count = 0
        statement = f'COPY "{table}" ({", ".join(columns)}) FROM STDIN'
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        self.rows[table] = self.rows.get(table, 0) + count
        say(f"load: {table}: {count:,} rows in {time.perf_counter() - started:.1f} s")


def _customers(book: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for c in book:
        yield (
            c["id"], c["company"], f"Contact {c['n']}", f"contact{c['n']}@customer.test",
            f"crm-{c['n']}", c["owner"], c["rep"], "default", 1, c["phase"], c["term"],
            c["term_start"], c["term_end"], c["phase"] != "onboarding", c["quadrant"], c["level"],
            c["at_risk"],
            "renewed" if c["phase"] == "churned" and c["n"] % 3 == 0 else None,
            "budget" if c["phase"] == "churned" else None, c["term_start"], c["updated_at"],
            *c.get("mrr", (None, None)),
        )  # fmt: skip


CUSTOMER_COLUMNS = (
    "id", "company", "contact_name", "email", "external_id", "owner", "rep", "plan_name",
    "plan_version", "phase", "term", "term_start", "term_end", "onboarded", "quadrant",
    "level", "at_risk", "renewal_outcome", "churn_reason", "created_at", "updated_at",
    "mrr", "mrr_observed_at",
)  # fmt: skip


def _plans(book: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    plan_id = 0
    for c in book:
        if c["phase"] == "onboarding":
            continue
        sources = ("manager", "customer") if c["n"] % 10 == 0 else ("manager",)
        for version, source in enumerate(sources, 1):
            plan_id += 1
            c.setdefault("plan_ids", []).append(plan_id)
            yield (
                plan_id, c["id"], version, c["owner"] if source == "manager" else "contact",
                source,
                "Track every deal our reps work", "Every rep logs their calls in the CRM",
                json.dumps(["Retire the shared spreadsheet"]),
                json.dumps(["One team at a time"]), c["term_start"] + timedelta(days=10),
            )  # fmt: skip


def _goals(book: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for c in book:
        for plan_id in c.get("plan_ids", [])[:1]:  # the manager's version carries goals
            for key in GOAL_KEYS:
                yield (
                    plan_id, c["id"], key, key.replace("_", " "), "count", 2.0, 12.0,
                    "increase", (c["term_end"] - timedelta(days=30)).date(),
                )  # fmt: skip


def _signals(
    book: list[dict[str, Any]], total: int, rng: random.Random, now: datetime
) -> Iterator[tuple[Any, ...]]:
    per, extra = divmod(total, len(book))
    kinds = list(SIGNAL_KINDS)
    weights = list(SIGNAL_KINDS.values())
    for index, c in enumerate(book):
        for _ in range(per + (1 if index < extra else 0)):
            at = _at(now, rng, 365)
            if rng.random() < GOAL_SHARE:
                kind, goal, value = "goal", rng.choice(GOAL_KEYS), float(rng.randint(0, 14))
            else:
                kind, goal = rng.choices(kinds, weights=weights)[0], None
                value = {
                    "nps": float(rng.randint(0, 10)),
                    "csat": float(rng.randint(1, 5)),
                    "revenue": round(rng.uniform(500, 50_000), 2),
                    "mrr": round(rng.uniform(100, 20_000), 2),
                    "cost": round(rng.uniform(100, 20_000), 2),
                }.get(kind, float(rng.randint(0, 500)))
            yield (c["id"], kind, value, goal, at, "api", at)


def _keep_latest_mrr(book: list[dict[str, Any]], signals: list[tuple[Any, ...]]) -> None:
    """Each account's latest MRR onto its row, as recording an MRR signal keeps it
    (`db.ingest.keep_latest_mrr`): the signals are in time order, so the last one wins."""
    accounts = {c["id"]: c for c in book}
    for customer_id, kind, value, _, observed_at, *_ in signals:
        if kind == "mrr":
            accounts[customer_id]["mrr"] = (value, observed_at)


def _assessments(
    book: list[dict[str, Any]], rng: random.Random, now: datetime
) -> Iterator[tuple[Any, ...]]:
    for c in book:
        scored = c["quadrant"] != "unknown"
        count = ASSESSMENTS_PER_SCORED if scored and c["phase"] != "onboarding" else 1
        for k in range(count):
            # The latest within the last 45 days; earlier ones a quarter apart.
            at = now - timedelta(days=k * 91 + rng.uniform(0, 45))
            quadrant = c["quadrant"] if k == 0 else _pick(rng, QUADRANTS)
            x, y = (c["x"], c["y"]) if k == 0 else _scores(rng, quadrant)
            level = None if x is None or y is None else round((x + y) / 2, 4)
            risks = ["neutral_high_profit"] if k == 0 and c["neutral_risk"] else []
            detail = {
                "quadrant": quadrant,
                "customer_score": x,
                "company_score": y,
                "level": level,
                "risks": risks,
                "inputs": {"revenue": round(rng.uniform(1000, 90_000), 2), "margin": 0.4},
                "missing": [] if scored else ["nps", "usage"],
            }
            yield (
                c["id"], f"{c['id']}:t{c['term']}:check-in-{k}", at, x, y, quadrant, level,
                None, json.dumps(detail),
            )  # fmt: skip


TASK_COLUMNS = (
    "id", "customer_id", "kind", "title", "owner_role", "assignee", "status", "due_at",
    "created_at", "reminded", "escalated", "playbook", "completed_at", "completed_by", "result",
)  # fmt: skip


# Each customer's latest two assessments onto its row, as the assessment activity keeps
# them (`Customer.stand`).
STANDING = """
WITH ranked AS (
    SELECT customer_id, assessed_at, quadrant, level, customer_score, company_score,
        row_number() OVER (
            PARTITION BY customer_id ORDER BY assessed_at DESC, id DESC) AS rank
    FROM assessment
)
UPDATE customer SET customer_score = latest.customer_score,
    company_score = latest.company_score, assessed_at = latest.assessed_at,
    previous_quadrant = earlier.quadrant, previous_level = earlier.level,
    previous_customer_score = earlier.customer_score,
    previous_company_score = earlier.company_score,
    previous_assessed_at = earlier.assessed_at
FROM ranked latest LEFT JOIN ranked earlier
    ON earlier.customer_id = latest.customer_id AND earlier.rank = 2
WHERE latest.rank = 1 AND latest.customer_id = customer.id
"""


def _tasks(
    book: list[dict[str, Any]], rng: random.Random, now: datetime
) -> Iterator[tuple[Any, ...]]:
    def task(
        c: dict[str, Any], local: str, kind: str, role: str, assignee: str | None, open_: bool
    ) -> tuple[Any, ...]:
        due = now + timedelta(days=rng.uniform(-20, 30))
        done = None if open_ else due - timedelta(days=rng.uniform(0, 5))
        overdue = open_ and due < now
        return (
            f"{c['id']}:t{c['term']}:{local}", c["id"], kind, f"{kind} for {c['company']}",
            role, assignee, "open" if open_ else "done", due, due - timedelta(days=7),
            overdue, overdue and due < now - timedelta(days=7),
            "unhappy" if kind == "playbook" else None, done,
            None if open_ else assignee or c["owner"],
            None if open_ else json.dumps({"kind": kind, "notes": "held"}),
        )  # fmt: skip

    for c in book:
        onboarding = c["phase"] == "onboarding"
        yield task(c, "kickoff", "kickoff", "manager", c["owner"], onboarding)
        if c["phase"] == "renewal":
            yield task(c, "renewal", "renewal", "manager", c["owner"], True)
        if c["at_risk"] and c["phase"] != "churned":
            # Reps' work goes to the account's rep, or to the managers' queue without one.
            yield task(c, "playbook-1", "playbook", "rep", c["rep"], True)
        if c["phase"] in ("adopting", "renewal") and c["n"] % 2 == 0:
            yield task(c, "review_call-1", "review_call", "manager", c["owner"], False)


def _timeline(
    book: list[dict[str, Any]], rng: random.Random, now: datetime
) -> Iterator[tuple[Any, ...]]:
    kinds = ("signed_up", "email", "kickoff", "assessed", "signal", "task")
    for c in book:
        for k in range(TIMELINE_PER_CUSTOMER):
            kind = kinds[k % len(kinds)]
            at = _at(now, rng, 365)
            yield (c["id"], f"{c['id']}:t{c['term']}:{kind}-{k}", at, kind, f"{kind} #{k}")


def _outbox(book: list[dict[str, Any]], now: datetime) -> Iterator[tuple[Any, ...]]:
    for c in book:
        for k, template in enumerate(("welcome", "check_in")[:EMAILS_PER_CUSTOMER]):
            at = c["term_start"] + timedelta(days=30 * k)
            yield (
                f"{c['id']}:t{c['term']}:{template}", c["id"], template,
                f"contact{c['n']}@customer.test", f"{template.title()} from Tandem",
                "Hello,\n\nhow are you getting on?\n", "<p>Hello,</p><p>how are you?</p>",
                "delivered", 1, "file", at, at,
            )  # fmt: skip


def _book(customers: int, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    book = []
    for n in range(customers):
        phase = _pick(rng, PHASES)
        quadrant = "unknown" if phase == "onboarding" and rng.random() < 0.9 else None
        quadrant = quadrant or _pick(rng, QUADRANTS)
        x, y = _scores(rng, quadrant)
        neutral_risk = quadrant == "neutral" and y is not None and y > 0.5
        start = _at(now, rng, 60 if phase == "onboarding" else 700)
        book.append(
            {
                "n": n,
                "id": f"cust-{n:06d}",
                "company": f"Company {n:06d}",
                "owner": rng.choice(OWNERS),
                # Most accounts have a rep; one in seven is the managers' alone.
                "rep": REPS[n % len(REPS)] if n % 7 else None,
                "phase": phase,
                "term": 1 + (n % 3 if phase != "onboarding" else 0),
                "term_start": start,
                "term_end": start + timedelta(days=365),
                "quadrant": quadrant,
                "x": x,
                "y": y,
                "level": None if x is None or y is None else round((x + y) / 2, 4),
                "at_risk": neutral_risk or quadrant.startswith("unhappy"),
                "neutral_risk": neutral_risk,
                "updated_at": _at(now, rng, 30),
            }
        )
    return book


COLUMNS = {
    "success_plan": "id customer_id version author source intended_use success_definition "
    "objectives constraints created_at",
    "goal": "plan_id customer_id key metric unit baseline target direction target_date",
    "signal": "customer_id kind value goal_key observed_at source recorded_at",
    "assessment": "customer_id key assessed_at customer_score company_score quadrant level "
    "trend detail",
    "timeline": "customer_id key at kind message",
    "outbox": "key customer_id template to_address subject text_body html_body status "
    "attempts delivered_via created_at delivered_at",
}


def _in_time_order(rows: Iterable[tuple[Any, ...]], column: int) -> list[tuple[Any, ...]]:
    """Rows as they would have arrived: recent signals, assessments and events sit together
    at the end of their table, as in a database that grew over time (a load in customer
    order would scatter a month's rows over every page)."""
    return sorted(rows, key=lambda row: row[column])


def _secondary_indexes(connection: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """The indexes no constraint owns (those can be dropped and made again)."""
    return connection.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.schemaname = 'public' AND i.tablename <> 'alembic_version'
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                             WHERE c.conindid = (quote_ident(i.indexname))::regclass)"""
    ).fetchall()


def load(url: str, customers: int, signals: int, seed: int = 7) -> Book:
    """Migrate the empty database, then COPY a book of `customers` accounts with
    `signals` signals and everything that hangs off them."""
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    rng = random.Random(seed)
    now = datetime.now(UTC)
    book = _book(customers, rng, now)
    with psycopg.connect(libpq_url(url)) as connection:
        connection.execute("SET maintenance_work_mem = '256MB'")
        indexes = _secondary_indexes(connection)
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        writer = _Writer(connection)
        signal_rows = _in_time_order(_signals(book, signals, rng, now), 4)
        _keep_latest_mrr(book, signal_rows)
        writer.copy("customer", CUSTOMER_COLUMNS, _customers(book))
        writer.copy("success_plan", COLUMNS["success_plan"].split(), _plans(book))
        writer.copy("goal", COLUMNS["goal"].split(), _goals(book))
        writer.copy("signal", COLUMNS["signal"].split(), signal_rows)
        assessments = _in_time_order(_assessments(book, rng, now), 2)
        writer.copy("assessment", COLUMNS["assessment"].split(), assessments)
        connection.execute(STANDING)
        writer.copy("task", TASK_COLUMNS, _tasks(book, rng, now))
        events = _in_time_order(_timeline(book, rng, now), 2)
        writer.copy("timeline", COLUMNS["timeline"].split(), events)
        writer.copy("outbox", COLUMNS["outbox"].split(), _outbox(book, now))
        # The plans were given their ids (the goals point at them): move the sequence on.
        connection.execute(
            "SELECT setval(pg_get_serial_sequence('success_plan', 'id'), "
            "(SELECT coalesce(max(id), 1) FROM success_plan))"
        )
        say(f"load: rebuilding {len(indexes)} indexes")
        index_started = time.perf_counter()
        for _, definition in indexes:
            connection.execute(definition)
        connection.commit()
        say(f"load: indexes rebuilt in {time.perf_counter() - index_started:.1f} s")
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    pairs = sorted({(c["phase"], c["quadrant"]) for c in book})
    result = Book(
        customer_ids=[c["id"] for c in book],
        filters=pairs,
        rows=writer.rows,
        seconds=time.perf_counter() - started,
    )
    say(f"load: {sum(result.rows.values()):,} rows in {result.seconds:.0f} s")
    return result
