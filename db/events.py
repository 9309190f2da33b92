"""Product events into the records: kept raw for a few weeks, attributed to accounts and
rolled up into per-account, per-metric daily counts. Idempotent by `messageId`: only
events stored for the first time are counted, so a resent batch adds nothing.

Everything is done in bulk, one statement for a batch's events and their rollup on
PostgreSQL (INSERT ... ON CONFLICT), never an ORM object per event: with the HTTP request
around it, an event costs about 2.5 times the CPU of a bare `executemany` of the same
rows (bench/segment_ingest.py, docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Engine, delete, or_, update
from sqlmodel import Session, col, select

from db.bulk import insert_new
from db.contacts import from_identify
from db.engine import write_once
from db.rollup import (
    ROLLUP_SQL,
    Attributed,
    Counted,
    Mappings,
    count,
    counted,
    insert_for,
    roll_up,
    take_mapped,
)
from db.sources import source_for_key
from models.product_events import ActiveUserDay, ProductEvent, UserGroup
from models.segment import IngestReceipt, SegmentCall
from models.tables import Customer

WAITING_CHUNK = 5000  # waiting events applied per round


def message_id_of(call: SegmentCall, payload: str) -> str:
    """The sender's messageId, or one made from the call itself, so that a call resent
    without one (a curl by hand) is still counted once."""
    return call.message_id or "tdm-" + hashlib.sha256(payload.encode()).hexdigest()[:40]


def ingest(
    engine: Engine,
    write_key: str,
    calls: list[tuple[SegmentCall, str]],
    mappings: Mappings,
    received_at: datetime | None = None,
) -> IngestReceipt | None:
    """Store the calls (each with its JSON as received) in one transaction, attribute
    them and roll them up; None, and nothing stored, when the write key is not a live
    source's. A concurrent sender of the same messageIds: the transaction that loses on
    the unique key is replayed and finds them there."""
    received = received_at or datetime.now(UTC)
    active: set[tuple[str, str, date, str | None]] = set()

    def work(session: Session) -> IngestReceipt | None:
        receipt = _ingest(session, write_key, calls, mappings, received)
        active.clear()
        active.update(session.info.pop("active", ()))
        return receipt

    receipt = write_once(engine, work)
    _remember_active(active)
    return receipt


def _ingest(
    session: Session,
    write_key: str,
    calls: list[tuple[SegmentCall, str]],
    mappings: Mappings,
    received_at: datetime,
) -> IngestReceipt | None:
    # The key is checked in the batch's own transaction: one round trip fewer.
    source_id = source_for_key(session, write_key)
    if source_id is None:
        return None
    mappings = cache(mappings)  # a plan's mapping, read once per batch
    unique: dict[str, tuple[SegmentCall, str]] = {}
    for call, payload in calls:
        unique.setdefault(message_id_of(call, payload), (call, payload))
    # Within a batch, a user's latest `group` call counts for the calls around it.
    joined = {c.user_key: c.group_id for c, _ in unique.values() if c.type == "group"}
    joined.pop(None, None)
    loose = {c.user_key for c, _ in unique.values() if not c.named_group} - set(joined) - {None}
    known = _memberships(session, loose)
    group_of = {
        m: call.named_group or joined.get(call.user_key) or known.get(call.user_key)
        for m, (call, _) in unique.items()
    }
    accounts = _accounts(session, {g for g in group_of.values() if g})
    rows: list[Row] = []
    attributed: list[Attributed] = []
    for m, (call, payload) in sorted(unique.items()):  # one lock order for all writers
        group_id = group_of[m]
        customer_id, plan = accounts.get(group_id or "", (None, ""))
        row = Row(
            m, call.type, call.event or call.name, call.user_key, group_id, customer_id,
            call.occurred_at(received_at), payload,
        )  # fmt: skip
        rows.append(row)
        if customer_id is not None:
            attributed.append(
                Attributed(
                    customer_id, plan, row.type, row.event, row.user_key, row.occurred_at, m,
                    call.properties, call.traits,
                )
            )  # fmt: skip
    to_count = counted(attributed, mappings)
    database = str(session.get_bind().url)
    for e in to_count:  # a user already counted that day need not be looked up again
        if (database, e.customer_id, e.day, e.user_key) in _ACTIVE:
            e.user_key = None
    added = _store_and_count(session, source_id, received_at, rows, to_count)
    fresh = [a for a in attributed if a.message_id in added]
    tutorials = take_mapped(session, fresh, mappings)
    from_identify(
        session,
        (
            (a.customer_id, unique[a.message_id][0].person_traits)
            for a in fresh
            if a.type in ("identify", "group")
        ),
    )
    if joined:
        _join(session, joined, received_at)
        apply_waiting(session, mappings, group_ids=set(joined.values()), user_keys=set(joined))
    session.info["active"] = {
        (database, e.customer_id, e.day, e.user_key)
        for e in to_count
        if e.message_id in added and e.user_key
    }
    return IngestReceipt(
        received=len(calls),
        added=len(added),
        tutorials=tutorials,
        unattributed=sum(1 for r in rows if r.message_id in added and r.customer_id is None),
    )


@dataclass(slots=True)
class Row:
    """A product event as stored (the batch's source and time of receipt aside)."""

    message_id: str
    type: str
    event: str | None
    user_key: str | None
    group_id: str | None
    customer_id: str | None
    occurred_at: datetime
    payload: str


# Users counted active on a day, by database, customer and day: most events are by a
# user already counted that day, and need not ask the database again. Filled after the
# transaction commits; only an optimisation (the table's key still counts each once).
_ACTIVE: set[tuple[str, str, date, str | None]] = set()
ACTIVE_LIMIT = 1_000_000


def _remember_active(keys: set[tuple[str, str, date, str | None]]) -> None:
    if len(_ACTIVE) + len(keys) > ACTIVE_LIMIT:
        _ACTIVE.clear()
    _ACTIVE.update(keys)


def _store_and_count(
    session: Session,
    source_id: int,
    received_at: datetime,
    rows: list[Row],
    to_count: list[Counted],
) -> set[str]:
    """INSERT the raw events, skipping messageIds already there, and count those stored
    now; the ids stored now. One statement on PostgreSQL."""
    if not rows:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        values = [
            {**{f: getattr(r, f) for f in ROW_FIELDS}, "source_id": source_id,
             "received_at": received_at}
            for r in rows
        ]  # fmt: skip
        added = {row[0] for row in insert_new(session, ProductEvent, values, "message_id")}
        count(session, [e for e in to_count if e.message_id in added])
        return added
    # One array per column, and the rollup's metric and active user beside each event.
    counts = {e.message_id: e for e in to_count}
    none = Counted("", "", None, datetime.min.date(), None)
    per_event = [counts.get(r.message_id, none) for r in rows]
    arrays: list[Any] = [[getattr(r, f) for r in rows] for f in ROW_FIELDS]
    arrays += [[c.metric for c in per_event], [c.user_key for c in per_event]]
    with session.connection().connection.cursor() as cursor:
        cursor.execute(STORE_SQL, [*arrays, source_id, received_at])
        return {row[0] for row in cursor.fetchall()}


ROW_FIELDS = ("message_id", "type", "event", "user_key", "group_id", "customer_id",
              "occurred_at", "payload")  # fmt: skip
# The batch's events, stored, and those stored now (not a resent messageId) counted by
# the rollup, in one statement: one round trip, whatever the batch holds. The day an
# event counts for is its UTC date, as `counted` takes it.
STORE_SQL = f"""
WITH batch AS (
    SELECT * FROM unnest(%b::varchar[], %b::varchar[], %b::varchar[], %b::varchar[],
                         %b::varchar[], %b::varchar[], %b::timestamptz[], %b::text[],
                         %b::varchar[], %b::varchar[])
        AS b ({", ".join(ROW_FIELDS)}, metric, active_user)
), new AS (
    INSERT INTO product_event ({", ".join(ROW_FIELDS)}, source_id, received_at)
    SELECT {", ".join(ROW_FIELDS)}, %b::integer, %b::timestamptz FROM batch
    ON CONFLICT DO NOTHING
    RETURNING message_id
), counted_events AS (
    SELECT customer_id, metric, (occurred_at AT TIME ZONE 'UTC')::date AS day,
           active_user AS user_key
    FROM batch JOIN new USING (message_id)
    WHERE metric IS NOT NULL OR active_user IS NOT NULL
), {ROLLUP_SQL}
SELECT message_id FROM new
"""


def _memberships(session: Session, user_keys: set[str | None]) -> dict[str | None, str]:
    if not user_keys:
        return {}
    query = select(UserGroup.user_key, UserGroup.group_id).where(
        col(UserGroup.user_key).in_(user_keys)
    )
    return {user: group for user, group in session.exec(query)}


# Accounts found lately, by database and groupId: (until, customer id, plan name). Most
# batches name accounts seen a moment ago; a query for them every batch would cost as
# much as storing the events. Only found accounts are kept: a new one is found at once.
_KNOWN: dict[tuple[str, str], tuple[float, str, str]] = {}
KNOWN_SECONDS = 60.0


def _accounts(session: Session, group_ids: set[str]) -> dict[str, tuple[str, str]]:
    """groupId -> (customer id, plan name), by the account's external id or its id."""
    database, now = str(session.get_bind().url), time.monotonic()
    found: dict[str, tuple[str, str]] = {}
    for group_id in group_ids:
        known = _KNOWN.get((database, group_id))
        if known is not None and known[0] > now:
            found[group_id] = known[1:]
    missing = group_ids - set(found)
    if not missing:
        return found
    query = (
        select(Customer.id, Customer.external_id, Customer.plan_name)
        .where(or_(col(Customer.id).in_(missing), col(Customer.external_id).in_(missing)))
        .order_by(col(Customer.id).desc())  # the same answer every time when ids are shared
    )
    for customer_id, external_id, plan in session.exec(query):
        for group_id in {customer_id, external_id} & missing:
            found[group_id] = (customer_id, plan)
            _KNOWN[(database, group_id)] = (now + KNOWN_SECONDS, customer_id, plan)
    return found


def _join(session: Session, joined: dict[str | None, str], at: datetime) -> None:
    rows = [{"user_key": u, "group_id": g, "updated_at": at} for u, g in sorted(joined.items())]
    statement = insert_for(session, UserGroup)
    statement = statement.on_conflict_do_update(
        index_elements=["user_key"],
        set_={"group_id": statement.excluded.group_id, "updated_at": statement.excluded.updated_at},
    )
    session.execute(statement, rows)


def apply_waiting(
    session: Session,
    mappings: Mappings,
    group_ids: set[str] | None = None,
    user_keys: set[str] | None = None,
) -> int:
    """Attribute the events that were waiting for an account which is now known (or for
    a user who has since joined one) and roll them up; the ones given, or all."""
    applied = 0
    after = 0
    while True:
        query = select(ProductEvent).where(
            col(ProductEvent.customer_id).is_(None), col(ProductEvent.id) > after
        )
        if group_ids is not None or user_keys is not None:
            query = query.where(
                or_(
                    col(ProductEvent.group_id).in_(group_ids or set()),
                    col(ProductEvent.user_key).in_(user_keys or set()),
                )
            )
        waiting = list(session.exec(query.order_by(col(ProductEvent.id)).limit(WAITING_CHUNK)))
        if not waiting:
            return applied
        after = waiting[-1].id or after
        members = _memberships(session, {e.user_key for e in waiting if not e.group_id})
        group_of = {e.id: e.group_id or members.get(e.user_key) for e in waiting}
        accounts = _accounts(session, {g for g in group_of.values() if g})
        now_known, people = [], []
        for e in waiting:
            account = accounts.get(group_of[e.id] or "")
            if account is None:
                continue
            session.execute(
                update(ProductEvent)
                .where(col(ProductEvent.id) == e.id)
                .values(customer_id=account[0], group_id=group_of[e.id])
            )
            call = json.loads(e.payload)
            now_known.append(
                Attributed(
                    customer_id=account[0],
                    plan=account[1],
                    type=e.type,
                    event=e.event,
                    user_key=e.user_key,
                    occurred_at=e.occurred_at,
                    message_id=e.message_id,
                    properties=call.get("properties") or {},
                    traits=call.get("traits") or {},
                )
            )
            if e.type in ("identify", "group"):
                people.append((account[0], SegmentCall.model_validate(call).person_traits))
        roll_up(session, now_known, mappings)
        # An `identify` that came before its user's `group` (or a group that came before
        # its account) names a contact of the account, as it would have in the other order.
        from_identify(session, people)
        applied += len(now_known)


def prune(engine: Engine, days: int, now: datetime | None = None) -> int:
    """Drop raw events (and who was active) older than `days`. Events still waiting for
    their account are kept: nothing is lost. The daily counts stay."""
    before = (now or datetime.now(UTC)) - timedelta(days=days)

    def work(session: Session) -> int:
        result = session.execute(
            delete(ProductEvent).where(
                col(ProductEvent.received_at) < before, col(ProductEvent.customer_id).is_not(None)
            )
        )
        session.execute(delete(ActiveUserDay).where(col(ActiveUserDay.day) < before.date()))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    return write_once(engine, work)
