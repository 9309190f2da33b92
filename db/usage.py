"""Reading what product events rolled up into: an account's daily usage, the usage
signals scoring reads, the events still waiting for their account, and the tutorial
completions the lifecycle has not been told of yet."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, bindparam, func
from sqlmodel import Session, col, select

from db.engine import session_scope, write_once
from db.events import Mappings, apply_waiting
from models.product_events import (
    ACTIVE_USERS,
    AccountTraits,
    ProductEvent,
    TutorialCompletion,
    UsageDaily,
)
from models.segment import AccountUsage, UsageDay, WaitingAccount
from models.signals import Observation, SignalKind
from models.tables import Customer


def account_usage(
    engine: Engine, customer: Customer, since: date, mappings: Mappings
) -> AccountUsage:
    """The account's usage since a day; events that waited for it are applied first."""
    groups = {customer.id, customer.external_id or customer.id}
    write_once(engine, lambda session: apply_waiting(session, mappings, group_ids=groups))
    customer_id = customer.id
    with session_scope(engine) as session:
        traits = session.get(AccountTraits, customer_id)
        return AccountUsage(
            customer_id=customer_id,
            mrr=traits.mrr if traits else None,
            plan=traits.plan if traits else None,
            seats=traits.seats if traits else None,
            days=daily_usage(session, customer_id, since, date.max),
        )


# Built once, its values bound at each call: every check-in reads it, and building it
# cost more than running it (as for db/queries.py's reads).
_DAILY_USAGE = (
    select(UsageDaily.metric, UsageDaily.day, UsageDaily.count)
    .where(
        UsageDaily.customer_id == bindparam("customer_id"),
        col(UsageDaily.day) >= bindparam("since"),
        col(UsageDaily.day) <= bindparam("until"),
    )
    .order_by(col(UsageDaily.day), col(UsageDaily.metric))
)


def daily_usage(session: Session, customer_id: str, since: date, until: date) -> list[UsageDay]:
    window = {"customer_id": customer_id, "since": since, "until": until}
    return [
        UsageDay(metric=metric, day=day, count=count)
        for metric, day, count in session.exec(_DAILY_USAGE, params=window)
    ]


def usage_signals(
    session: Session, customer_id: str, since: datetime, until: datetime
) -> list[Observation]:
    """The usage signals scoring reads, from the rollup: per metric, a day's count over
    that day (today's so far, up to `until`), and `active_users`, the day's distinct
    users, as a level. With `plan_usage_signals`, the one place product events become
    signals."""
    days = daily_usage(session, customer_id, since.date(), until.date())
    return [o for d in days if (o := _observation(d, since, until)) is not None]


def plan_usage_signals(
    session: Session, plan_name: str, since: datetime, until: datetime
) -> dict[str, list[Observation]]:
    """The same for every account on a plan (its peers), by customer id."""
    query = (
        select(UsageDaily)
        .join(Customer, col(Customer.id) == col(UsageDaily.customer_id))
        .where(
            Customer.plan_name == plan_name,
            col(UsageDaily.day) >= since.date(),
            col(UsageDaily.day) <= until.date(),
        )
    )
    accounts: dict[str, list[Observation]] = {}
    for row in session.exec(query):
        day = UsageDay(metric=row.metric, day=row.day, count=row.count)
        observation = _observation(day, since, until)
        if observation is not None:
            accounts.setdefault(row.customer_id, []).append(observation)
    return accounts


def _observation(d: UsageDay, since: datetime, until: datetime) -> Observation | None:
    start = datetime.combine(d.day, time(), UTC)
    end = min(until, start + timedelta(days=1))
    if end <= since or start >= until:
        return None
    return Observation(
        kind=SignalKind.usage,
        metric=d.metric,
        value=float(d.count),
        observed_at=end,
        period_start=None if d.metric == ACTIVE_USERS else start,
    )


def apply_all_waiting(engine: Engine, mappings: Mappings) -> int:
    return write_once(engine, lambda session: apply_waiting(session, mappings))


def waiting_accounts(engine: Engine, limit: int = 200) -> list[WaitingAccount]:
    """Events for accounts not known yet, by account (or by user, when the events name
    no account and the user has joined none), most events first."""
    with session_scope(engine) as session:
        who = func.coalesce(col(ProductEvent.group_id), "")
        user = func.coalesce(col(ProductEvent.user_key), "")
        query = (
            select(
                who,
                user,
                func.count(),
                func.min(ProductEvent.occurred_at),
                func.max(ProductEvent.occurred_at),
            )
            .where(col(ProductEvent.customer_id).is_(None))
            .group_by(who, user)
        )
        merged: dict[tuple[str | None, str | None], WaitingAccount] = {}
        for group_id, user_key, count, first, last in session.exec(query):
            key = (group_id or None, None if group_id else user_key or None)
            first, last = _aware(first), _aware(last)
            seen = merged.get(key)
            if seen is None:
                merged[key] = WaitingAccount(
                    group_id=key[0], user_key=key[1], events=count, first_at=first, last_at=last
                )
            else:
                seen.events += count
                seen.first_at, seen.last_at = min(seen.first_at, first), max(seen.last_at, last)
        ordered = sorted(
            merged.values(), key=lambda w: (-w.events, w.group_id or "", w.user_key or "")
        )
        return ordered[:limit]


def _aware(value: datetime | str) -> datetime:
    # An aggregate over a column loses its type on SQLite: it comes back as text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def untold_tutorials(engine: Engine, limit: int = 100) -> list[TutorialCompletion]:
    with session_scope(engine) as session:
        query = select(TutorialCompletion).where(col(TutorialCompletion.told_at).is_(None))
        return list(session.exec(query.order_by(col(TutorialCompletion.completed_at)).limit(limit)))


def mark_told(engine: Engine, completion: TutorialCompletion, outcome: str) -> None:
    with session_scope(engine) as session:
        row = session.get(TutorialCompletion, (completion.customer_id, completion.tutorial))
        if row is not None:
            row.told_at, row.outcome = datetime.now(UTC), outcome
            session.add(row)
