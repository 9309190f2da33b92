"""The usage of an account's peers: the accounts on the same plan with usage in the
recent window, each read as scoring reads its own (models/scoring/usage.py)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from datetime import datetime, timedelta
from threading import Lock

from sqlmodel import Session, col, select

from db.usage import plan_usage_signals
from models.plan import ScoringSettings
from models.scoring import peer_levels
from models.scoring.usage import PEER_MARGIN_DAYS, Windows, peer_day
from models.signals import Observation, SignalKind, observation
from models.tables import Customer, SignalRecord


def peer_usage(
    session: Session, plan_name: str, as_of: datetime, scoring: ScoringSettings
) -> dict[str, list[float]]:
    as_of = peer_day(as_of)
    since = as_of - timedelta(days=scoring.usage.recent_days + PEER_MARGIN_DAYS)
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
    for customer_id, product_usage in plan_usage_signals(session, plan_name, since, as_of).items():
        accounts[customer_id].extend(product_usage)
    windows = Windows(scoring.usage.recent_days, scoring.usage.baseline_days)
    return peer_levels(list(accounts.values()), as_of, windows)


class PeerCache:
    """Peers as of a day, read once per plan, day and windows by each worker: every
    check-in that day ranks its account among the same figures without reading the
    whole plan's usage again. Usage recorded later for days before it counts from the
    next day on. Kept small: the days being assessed now."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.lock = Lock()
        self.days: OrderedDict[tuple[str, datetime, int, int], dict[str, list[float]]] = (
            OrderedDict()
        )

    def get(
        self, session: Session, plan_name: str, as_of: datetime, scoring: ScoringSettings
    ) -> dict[str, list[float]]:
        key = (plan_name, peer_day(as_of), scoring.usage.recent_days, scoring.usage.baseline_days)
        with self.lock:
            if key in self.days:
                self.days.move_to_end(key)
                return self.days[key]
        peers = peer_usage(session, plan_name, as_of, scoring)  # outside the lock: a read
        with self.lock:
            self.days[key] = peers
            while len(self.days) > self.size:
                self.days.popitem(last=False)
        return peers
