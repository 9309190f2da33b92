"""The usage of an account's peers: the accounts on the same plan with usage in the
recent window, each read as scoring reads its own (models/scoring/usage.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from models.plan import ScoringSettings
from models.scoring import peer_levels
from models.scoring.usage import Windows
from models.signals import Observation, SignalKind, observation
from models.tables import Customer, SignalRecord

# Read a little before the recent window: a monthly report that ends inside it starts
# before it, and the reporting span of each account needs its neighbouring reports.
MARGIN_DAYS = 31


def peer_usage(
    session: Session, plan_name: str, as_of: datetime, scoring: ScoringSettings
) -> dict[str, list[float]]:
    since = as_of - timedelta(days=scoring.usage.recent_days + MARGIN_DAYS)
    rows = session.exec(
        select(SignalRecord)
        .join(Customer, col(Customer.id) == col(SignalRecord.customer_id))
        .where(
            Customer.plan_name == plan_name,
            SignalRecord.kind == SignalKind.usage.value,
            col(SignalRecord.observed_at) > since,
            col(SignalRecord.observed_at) <= as_of,
        )
    ).all()
    accounts: dict[str, list[Observation]] = defaultdict(list)
    for row in rows:
        accounts[row.customer_id].append(observation(row))
    windows = Windows(scoring.usage.recent_days, scoring.usage.baseline_days)
    return peer_levels(list(accounts.values()), as_of, windows)
