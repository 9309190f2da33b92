"""A seeded history of accounts whose churn follows from what they do, written straight
into the records as Tandem would hold them (customers, usage/seats/MRR signals, monthly
assessments, 'churned' timeline events), for `calibrate` and `backtest` to read.

Each account has a latent health that drifts month to month; its feature event rates
(lognormal scale per account and feature), active users and MRR follow that health, and
its monthly churn probability is logistic in it, plus a little churn unrelated to
behaviour (or, before `behaviour_from`, none but that). Nothing here is shaped after
Tandem's default weights: the shapes (event scale, monthly or weekly reports, surveys or
none, when behaviour starts to matter) are parameters, to check the scoring on data it
was not written for.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session

from models.tables import AssessmentRecord, Customer, SignalRecord, TimelineEvent

START = datetime(2025, 1, 1, tzinfo=UTC)
FEATURES = ("reports_shared", "deals_logged", "exports", "dashboards_viewed")


@dataclass(frozen=True)
class Shape:
    accounts: int = 300
    months: int = 15
    event_scale: float = 1.0  # multiplies every event rate
    period_days: int | None = None  # None: calendar months; else fixed periods (7: weekly)
    surveys: bool = False  # an NPS answer from a third of the accounts now and then
    seed: int = 1
    # Before this month churn is drawn at random, unrelated to behaviour: a history
    # whose earlier period teaches a fit nothing that holds later.
    behaviour_from: int = 0


def _logistic(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _month(m: int) -> datetime:
    year, month = divmod(START.month - 1 + m, 12)
    return START.replace(year=START.year + year, month=month + 1)


def _periods(start: datetime, end: datetime, days: int | None) -> list[tuple[datetime, datetime]]:
    if days is None:
        return [(start, end)]
    out, at = [], start
    while at < end:
        out.append((at, min(at + timedelta(days=days), end)))
        at += timedelta(days=days)
    return out


def write_history(engine: Engine, shape: Shape) -> dict[str, int]:
    """Writes the history; returns how many accounts and churns it holds."""
    rng = random.Random(shape.seed)
    churns = 0
    customers: list[Customer] = []
    rows: list[Row] = []
    for n in range(shape.accounts):
        cid = f"acct-{n:04d}"
        health = rng.gauss(0.3, 1.0)
        scale = {f: math.exp(rng.gauss(0.5, 1.0)) * shape.event_scale for f in FEATURES}
        seats = rng.randint(5, 60)
        price = seats * rng.choice([20, 30, 45])
        joined = _month(rng.randint(0, 3))
        customer = Customer(
            id=cid,
            company=f"Account {n}",
            contact_name="Pat",
            email=f"pat@{cid}.test",
            plan_name="default",
            plan_version=1,
            phase="adopting",
            term_start=joined,
            term_end=joined + timedelta(days=365),
        )
        customers.append(customer)
        churned = False
        m = (joined.year - START.year) * 12 + joined.month - START.month
        while m < shape.months and not churned:
            start, end = _month(m), _month(m + 1)
            health += rng.gauss(-0.05, 0.35)
            for p_start, p_end in _periods(start, end, shape.period_days):
                days = (p_end - p_start).days
                for f in FEATURES:
                    # Unhealthy accounts drop features first: each use is rarer.
                    rate = scale[f] * math.exp(0.6 * health + rng.gauss(0, 0.25))
                    if _logistic(2 * health + 1) < rng.random() * 0.6:
                        rate = 0.0
                    value = round(rate * days)
                    rows.append(_usage(cid, f, value, p_start, p_end))
                active = round(seats * _logistic(health + 0.3) * rng.uniform(0.85, 1.15))
                rows.append(_usage(cid, "active_users", active, p_start, p_end))
            if health < -1.0 and rng.random() < 0.3:
                price = round(price * 0.8)  # a downgrade
            rows.append(_signal(cid, "mrr", price, end))
            rows.append(_signal(cid, "seats", seats, end))
            if shape.surveys and rng.random() < 0.3:
                nps = min(10, max(0, round(7 + 2 * health + rng.gauss(0, 1.5))))
                rows.append(_signal(cid, "nps", nps, end - timedelta(days=3)))
            assessment = {"customer_id": cid, "key": f"{cid}:check_in-{m}", "assessed_at": end}
            rows.append((AssessmentRecord, assessment | {"quadrant": "unknown", "detail": {}}))
            # Churn is logistic in health, plus a small share unrelated to behaviour.
            p_churn = _logistic(-3.6 - 1.4 * health) + 0.004
            if m < shape.behaviour_from:
                p_churn = 0.04
            if rng.random() < p_churn:
                churned = True
                churns += 1
                at = end + timedelta(days=rng.randint(1, 27))
                event = {"customer_id": cid, "key": f"{cid}:ended", "at": at, "message": ""}
                rows.append((TimelineEvent, event | {"kind": "churned"}))
                customer.phase = "churned"
            m += 1
    with Session(engine) as session:
        session.add_all(customers)
        session.flush()
        # Many rows: one executemany per table instead of one ORM object each.
        for model in (SignalRecord, AssessmentRecord, TimelineEvent):
            mine = [r for table, r in rows if table is model]
            if mine:
                session.execute(insert(model), mine)
        session.commit()
    return {"accounts": shape.accounts, "churns": churns}


Row = tuple[type[Any], dict[str, Any]]
STORED = {"source": "test", "recorded_at": START}


def _usage(cid: str, metric: str, value: float, start: datetime, end: datetime) -> Row:
    row = {"customer_id": cid, "kind": "usage", "metric": metric, "value": value}
    return SignalRecord, row | {"period_start": start, "observed_at": end} | STORED


def _signal(cid: str, kind: str, value: float, at: datetime) -> Row:
    row = {"customer_id": cid, "kind": kind, "value": value, "observed_at": at}
    return SignalRecord, row | {"metric": None, "period_start": None} | STORED
