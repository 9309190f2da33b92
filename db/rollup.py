"""The rollup: product events newly stored for a known account, counted once into its
daily per-metric counts and distinct active users, and what the account's plan maps
them to: tutorials completed, goals measured, the MRR, plan and seats of a `group`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from db.bulk import add_counts, insert_new
from db.ingest import keep_latest_mrr
from models.plan import EventMapping
from models.product_events import (
    ACTIVE_USERS,
    AccountTraits,
    ActiveUserDay,
    TutorialCompletion,
    UsageDaily,
)
from models.signals import MAX_MAGNITUDE, SignalKind
from models.tables import SignalRecord

# A plan's name -> how its accounts' events count (the caller loads plans; db does not).
Mappings = Callable[[str], EventMapping]
COUNTED = ("track", "page")  # what a user does in the product; the rest describe them
PAGE_METRIC = "page"


@dataclass(slots=True)
class Attributed:
    """An event newly stored for a known account: what the rollup needs of it."""

    customer_id: str
    plan: str
    type: str
    event: str | None
    user_key: str | None
    occurred_at: datetime
    message_id: str
    properties: dict[str, Any]
    traits: dict[str, Any]


def insert_for(session: Session, table: type[SQLModel]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@dataclass(slots=True)
class Counted:
    """What one counted event (a track or a page) adds: one to its metric (None: the
    plan ignores it), and its user to the day's active users (None: known already)."""

    message_id: str
    customer_id: str
    metric: str | None
    day: date
    user_key: str | None


def counted(events: list[Attributed], mappings: Mappings) -> list[Counted]:
    found = []
    for e in events:
        if e.type in COUNTED:
            metric = PAGE_METRIC if e.type == "page" else mappings(e.plan).metric(e.event or "")
            day = e.occurred_at.astimezone(UTC).date()
            found.append(Counted(e.message_id, e.customer_id, metric, day, e.user_key))
    return found


def roll_up(session: Session, events: list[Attributed], mappings: Mappings) -> None:
    """Count the events into the daily rollup, and take what the plan maps of them."""
    take_mapped(session, events, mappings)
    count(session, counted(events, mappings))


def take_mapped(session: Session, events: list[Attributed], mappings: Mappings) -> int:
    """What the account's plan maps events to: the tutorials they complete, the goals
    they measure, and from a `group` call the account's MRR, plan and seats. Returns
    how many tutorial completions the events made."""
    completions = 0
    for e in events:
        if e.type == "track":
            completions += _tutorials_and_goals(session, mappings(e.plan), e)
        elif e.type == "group":
            _traits(session, mappings(e.plan), e)
    return completions


def count(session: Session, events: list[Counted]) -> None:
    """Add the events to the daily counts; each user once a day to `active_users`."""
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        columns = ("customer_id", "metric", "day", "user_key")
        arrays = [[getattr(e, c) for e in events] for c in columns]
        with session.connection().connection.cursor() as cursor:
            cursor.execute(COUNT_SQL, arrays)
        return
    counts = Counter((e.customer_id, e.metric, e.day) for e in events if e.metric)
    active = sorted({(e.customer_id, e.day, e.user_key) for e in events if e.user_key})
    rows = [{"customer_id": c, "day": d, "user_key": u} for c, d, u in active]
    # Users active for the first time that day (those the INSERT takes) add one each.
    for customer_id, day in insert_new(session, ActiveUserDay, rows, "customer_id", "day"):
        counts[(customer_id, ACTIVE_USERS, day)] += 1
    rows = [
        {"customer_id": c, "metric": m, "day": d, "count": n} for (c, m, d), n in counts.items()
    ]
    add_counts(session, UsageDaily, rows, key=("customer_id", "metric", "day"))


# The rollup on PostgreSQL, in one statement with whatever comes before it: the CTEs
# that follow a CTE `counted_events (customer_id, metric, day, user_key)` (a NULL metric:
# the plan ignores the event; a NULL user: known active that day already). On a busy
# machine each round trip waits its turn for a processor. Rows are written in key order,
# so concurrent batches take their locks in the same order and never deadlock.
ROLLUP_SQL = f"""
active AS (
    INSERT INTO active_user_day (customer_id, day, user_key)
    SELECT DISTINCT customer_id, day, user_key FROM counted_events WHERE user_key IS NOT NULL
    ORDER BY customer_id, day, user_key
    ON CONFLICT DO NOTHING
    RETURNING customer_id, day
), counted AS (
    SELECT customer_id, metric, day, count(*) AS count FROM counted_events
    WHERE metric IS NOT NULL GROUP BY customer_id, metric, day
    UNION ALL
    SELECT customer_id, '{ACTIVE_USERS}', day, count(*) FROM active GROUP BY customer_id, day
), added AS (
    INSERT INTO usage_daily (customer_id, metric, day, count)
    SELECT customer_id, metric, day, sum(count) FROM counted
    GROUP BY customer_id, metric, day
    ORDER BY customer_id, metric, day
    ON CONFLICT (customer_id, metric, day)
    DO UPDATE SET count = usage_daily.count + EXCLUDED.count
)
"""
COUNT_SQL = f"""
WITH counted_events AS (
    SELECT * FROM unnest(%b::varchar[], %b::varchar[], %b::date[], %b::varchar[])
        AS u (customer_id, metric, day, user_key)
), {ROLLUP_SQL}
SELECT 1
"""


def _matches(wanted: dict[str, Any], properties: dict[str, Any]) -> bool:
    return all(properties.get(key) == value for key, value in wanted.items())


def _tutorials_and_goals(session: Session, mapping: EventMapping, e: Attributed) -> int:
    completions = 0
    for rule in mapping.tutorials:
        if rule.event == e.event and _matches(rule.properties, e.properties):
            values = {
                "customer_id": e.customer_id,
                "tutorial": rule.tutorial,
                "message_id": e.message_id,
                "completed_at": e.occurred_at,
            }
            session.execute(
                insert_for(session, TutorialCompletion).values(values).on_conflict_do_nothing()
            )
            completions += 1
    for goal in mapping.goals:
        value = e.properties.get(goal.property)
        if (
            goal.event == e.event
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            _signal(session, e, SignalKind.goal, float(value), e.message_id, goal_key=goal.goal)
    return completions


def _traits(session: Session, mapping: EventMapping, e: Attributed) -> None:
    names = mapping.traits
    mrr, plan, seats = (e.traits.get(n) for n in (names.mrr, names.plan, names.seats))
    values: dict[str, Any] = {}
    if _amount(mrr):
        values["mrr"] = float(mrr)
        if _signal(session, e, SignalKind.mrr, float(mrr), f"segment:{e.message_id}:mrr"):
            keep_latest_mrr(session, e.customer_id, float(mrr), e.occurred_at)
    if isinstance(plan, str) and plan:
        values["plan"] = plan
    if isinstance(seats, int) and _amount(seats):
        values["seats"] = seats
        _signal(session, e, SignalKind.seats, float(seats), f"segment:{e.message_id}:seats")
    if not values:
        return
    statement = insert_for(session, AccountTraits).values(
        customer_id=e.customer_id, updated_at=e.occurred_at, **values
    )
    newer = statement.excluded.updated_at >= AccountTraits.updated_at
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={k: statement.excluded[k] for k in (*values, "updated_at")},
            where=newer,
        )
    )


def _amount(value: Any) -> bool:
    """A trait is an amount as a signal would be (models/signals.py): a number, at least
    0 and at most MAX_MAGNITUDE. Anything else is no MRR or seat count: `/signals`
    would refuse it, and stored it would swamp every sum it joined."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return numeric and 0 <= value <= MAX_MAGNITUDE


def _signal(
    session: Session,
    e: Attributed,
    kind: SignalKind,
    value: float,
    client_id: str,
    goal_key: str | None = None,
) -> bool:
    """Store the signal unless its client id is there already; True if stored now."""
    values = {
        "customer_id": e.customer_id,
        "kind": kind.value,
        "value": value,
        "goal_key": goal_key,
        "observed_at": e.occurred_at,
        "source": "segment",
        "client_id": client_id,
        "recorded_at": datetime.now(UTC),
    }
    statement = insert_for(session, SignalRecord).values(values).on_conflict_do_nothing()
    return session.execute(statement.returning(SignalRecord.id)).first() is not None
