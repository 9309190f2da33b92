"""`tandem backtest`: what a changed plan's scoring would have said, from the records alone.

Every recorded assessment is scored again with `models.scoring.assess`: the same signals
(those observed up to its `assessed_at`; the window is the new plan's), the success plan
in force then, the same plan start, and the new `scoring` settings. No lifecycle is
touched; nothing is written.

Reported: the accounts whose quadrant at their latest assessment would change, and how
well "at risk" at the latest assessment anticipated the churns that really happened
(phase `churned`; a customer who churned before any assessment counts as a miss):
precision and recall under the recorded scoring and under the new one. And, per
horizon, how well every re-scored assessment anticipated a churn within that horizon
after it (simulation/judgement.py): the figures `tandem calibrate` reports too.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.plan import ScoringSettings
from models.scoring import Assessment, PreviousAssessment, Quadrant, assess, peer_levels
from models.scoring.usage import PEER_MARGIN_DAYS, Windows, peer_day
from models.signals import ACTIVE_USERS, Observation, SignalKind, observation
from models.success_plan import Goal, SuccessPlan
from models.tables import (
    AssessmentRecord,
    Customer,
    GoalRecord,
    SignalRecord,
    SuccessPlanRecord,
    TimelineEvent,
)
from simulation.judgement import DEFAULT_HORIZONS, Scored, judge_all

CHURNED = "churned"

UNHAPPY = {Quadrant.unhappy_profitable.value, Quadrant.unhappy_unprofitable.value}


def at_risk(quadrant: str, risks: list[str]) -> bool:
    """As the records mark `customer.at_risk`: unhappy whatever the profit, or a risk."""
    return quadrant in UNHAPPY or bool(risks)


@dataclass(frozen=True)
class Confusion:
    flagged: int
    churned: int
    caught: int  # flagged and churned

    @property
    def precision(self) -> float | None:
        return self.caught / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.churned if self.churned else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "churned": self.churned,
            "caught": self.caught,
            "precision": self.precision,
            "recall": self.recall,
        }


def confusion(flagged: set[str], churned: set[str]) -> Confusion:
    return Confusion(flagged=len(flagged), churned=len(churned), caught=len(flagged & churned))


@dataclass
class Rescored:
    customer_id: str
    key: str
    assessed_at: datetime
    old_quadrant: str
    old_risks: list[str]
    old_scores: tuple[float | None, float | None]
    new: Assessment

    @property
    def changed(self) -> bool:
        return self.old_quadrant != self.new.quadrant.value


@dataclass
class _Plan:
    version: int
    created_at: datetime
    plan: SuccessPlan | None  # None for a version without goals (the customer's own words)


def _plans(session: Session) -> dict[str, list[_Plan]]:
    goals: dict[int, list[Goal]] = defaultdict(list)
    for g in session.exec(select(GoalRecord).order_by(col(GoalRecord.id))):
        fields = {k: v for k, v in g.model_dump().items() if k in Goal.model_fields}
        goals[g.plan_id].append(Goal.model_validate(fields))
    plans: dict[str, list[_Plan]] = defaultdict(list)
    for record in session.exec(select(SuccessPlanRecord).order_by(col(SuccessPlanRecord.version))):
        assert record.id is not None
        manager = getattr(record, "source", "manager") == "manager"
        plan = None
        if manager and goals[record.id]:
            plan = SuccessPlan(
                intended_use=record.intended_use,
                success_definition=record.success_definition,
                objectives=record.objectives,
                constraints=record.constraints,
                goals=goals[record.id],
            )
        plans[record.customer_id].append(_Plan(record.version, record.created_at, plan))
    return plans


def _in_force(plans: list[_Plan], at: datetime) -> SuccessPlan | None:
    """The manager's latest version recorded by then, as the assessment activity read it."""
    recorded = [p for p in plans if p.plan is not None and p.created_at <= at]
    return max(recorded, key=lambda p: p.version).plan if recorded else None


@dataclass
class Records:
    """Everything a re-scoring reads, loaded once: signals per customer (in time order),
    success plans, recorded assessments, customers and when each churned."""

    signals: dict[str, list[Observation]]
    plans: dict[str, list[_Plan]]
    assessments: list[AssessmentRecord]
    customers: dict[str, Customer]
    churned_at: dict[str, datetime]

    @property
    def end(self) -> datetime | None:
        """The last moment the records speak of: later churns are not known yet."""
        moments = [a.assessed_at for a in self.assessments] + list(self.churned_at.values())
        moments += [s[-1].observed_at for s in self.signals.values() if s]
        return max(moments) if moments else None


def load(engine: Engine) -> Records:
    with Session(engine) as session:
        signals: dict[str, list[Observation]] = defaultdict(list)
        for s in session.exec(select(SignalRecord).order_by(col(SignalRecord.observed_at))):
            signals[s.customer_id].append(observation(s))
        assessments = list(
            session.exec(
                select(AssessmentRecord).order_by(
                    col(AssessmentRecord.customer_id),
                    col(AssessmentRecord.assessed_at),
                    col(AssessmentRecord.id),
                )
            )
        )
        customers = {c.id: c for c in session.exec(select(Customer))}
        # Churn is dated by the lifecycle's own 'churned' timeline event.
        churned_at: dict[str, datetime] = {}
        for event in session.exec(select(TimelineEvent).where(TimelineEvent.kind == CHURNED)):
            if customers.get(event.customer_id) and customers[event.customer_id].phase == CHURNED:
                churned_at[event.customer_id] = event.at
        return Records(dict(signals), _plans(session), assessments, customers, churned_at)


class _Peers:
    """Peer usage per plan and day, as the assessment activity reads it (db/peers.py)."""

    def __init__(self, records: Records, scoring: ScoringSettings) -> None:
        self.records, self.scoring = records, scoring
        self.windows = Windows(scoring.usage.recent_days, scoring.usage.baseline_days)
        self.by_plan: dict[str, list[str]] = defaultdict(list)
        for cid, customer in records.customers.items():
            self.by_plan[customer.plan_name].append(cid)
        self.usage = {
            cid: [o for o in obs if o.kind is SignalKind.usage]
            for cid, obs in records.signals.items()
        }
        self.cache: dict[tuple[str, datetime], dict[str, list[float]]] = {}

    def __call__(self, customer_id: str, as_of: datetime) -> dict[str, list[float]] | None:
        customer = self.records.customers.get(customer_id)
        if customer is None:
            return None
        day = peer_day(as_of)
        key = (customer.plan_name, day)
        if key not in self.cache:
            since = day - timedelta(days=self.scoring.usage.recent_days + PEER_MARGIN_DAYS)
            accounts = []
            for cid in self.by_plan[customer.plan_name]:
                obs = self.usage.get(cid, [])
                lo = bisect_right(obs, since, key=lambda o: o.observed_at)
                hi = bisect_right(obs, day, key=lambda o: o.observed_at)
                if hi > lo:
                    accounts.append(obs[lo:hi])
            self.cache[key] = peer_levels(accounts, day, self.windows)
        return self.cache[key]


def rescore(records: Records, scoring: ScoringSettings) -> list[Rescored]:
    peers = _Peers(records, scoring)
    rescored: list[Rescored] = []
    previous: dict[str, PreviousAssessment] = {}
    for record in records.assessments:
        customer_plans = records.plans.get(record.customer_id, [])
        # The activity takes the first version's date (of any source) as the plan's start.
        started = customer_plans[0].created_at if customer_plans else None
        signals = records.signals.get(record.customer_id, [])
        upto = bisect_right(signals, record.assessed_at, key=lambda o: o.observed_at)
        new = assess(
            signals[:upto],
            scoring,
            record.assessed_at,
            success_plan=_in_force(customer_plans, record.assessed_at),
            plan_started=started,
            previous=previous.get(record.customer_id),
            peers=peers(record.customer_id, record.assessed_at),
        )
        previous[record.customer_id] = PreviousAssessment(quadrant=new.quadrant, level=new.level)
        rescored.append(
            Rescored(
                customer_id=record.customer_id,
                key=record.key,
                assessed_at=record.assessed_at,
                old_quadrant=record.quadrant,
                old_risks=list(record.detail.get("risks", [])),
                old_scores=(record.customer_score, record.company_score),
                new=new,
            )
        )
    return rescored


def scored(records: Records, rescored: list[Rescored]) -> list[Scored]:
    """The re-scored assessments as the judgement reads them."""
    return [
        Scored(
            customer_id=r.customer_id,
            assessed_at=r.assessed_at,
            components=r.new.components,
            churn_risk=r.new.churn_risk,
            risk_horizon_days=r.new.horizon_days or 90,
            level=r.new.level,
            at_risk=r.new.at_risk,
            churned_at=records.churned_at.get(r.customer_id),
        )
        for r in rescored
    ]


def usage_warnings(records: Records, scoring: ScoringSettings) -> list[str]:
    """The plan's usage names that the records never report. Metric names are free-form
    (a product's events), so a plan cannot be checked against them alone, but a misspelt
    one changes the scores quietly: with none of its scored metrics in the records, usage
    is scored on active users alone, and key features they lack leave breadth at -1."""
    seen = sorted(
        {
            o.metric_name
            for obs in records.signals.values()
            for o in obs
            if o.kind is SignalKind.usage
        }
    )
    shown = ", ".join(seen[:12]) + (f" and {len(seen) - 12} more" if len(seen) > 12 else "")
    reported = f"the records' usage metrics ({shown or 'none at all'})"
    usage = scoring.usage
    # The plan's names, what they are, what follows when the records have none of them
    # (and what to do), and when they lack some.
    checks = [
        (
            usage.metrics,
            "scored metrics",
            f"usage is scored on {ACTIVE_USERS} alone, where it is reported; name metrics "
            "the product reports in [scoring.usage] metrics, or leave it empty to score them all",
            "they score nothing",
        ),
        (
            usage.key_features,
            "key features",
            "breadth is -1 for every account with usage, so it judges nothing; name metrics "
            "the product reports in [scoring.usage] key_features",
            "no account can reach full breadth",
        ),
    ]
    warnings = []
    for names, called, if_none, if_some in checks:
        missing = [n for n in names if n not in seen]
        if missing and len(missing) == len(names):
            warnings.append(
                f"none of the plan's {called} ({', '.join(names)}) appear in {reported}: {if_none}"
            )
        elif missing:
            warnings.append(
                f"the plan's {called} {', '.join(missing)} never appear in {reported}: {if_some}"
            )
    return warnings


def horizons(scoring: ScoringSettings, horizon_days: int | None = None) -> list[int]:
    if horizon_days is not None:
        return [horizon_days]
    return sorted({*DEFAULT_HORIZONS, scoring.risk.horizon_days})


def backtest(
    engine: Engine, scoring: ScoringSettings, horizon_days: int | None = None
) -> dict[str, Any]:
    records = load(engine)
    rescored = rescore(records, scoring)
    customers = records.customers
    latest: dict[str, Rescored] = {}
    for r in rescored:  # in assessed_at order: the last one per customer wins
        latest[r.customer_id] = r
    # A churn never assessed is still a churn that scoring failed to anticipate.
    churned = {cid for cid, c in customers.items() if c.phase == CHURNED}
    old_flagged = {cid for cid, r in latest.items() if at_risk(r.old_quadrant, r.old_risks)}
    new_flagged = {cid for cid, r in latest.items() if r.new.at_risk}
    changes = [
        {
            "customer": cid,
            "company": customers[cid].company if cid in customers else "",
            "assessed_at": r.assessed_at.isoformat(),
            "old": r.old_quadrant,
            "new": r.new.quadrant.value,
            "old_scores": list(r.old_scores),
            "new_scores": [r.new.customer_score, r.new.company_score],
            "churned": cid in churned,
        }
        for cid, r in sorted(latest.items())
        if r.changed
    ]
    end = records.end
    judgements = (
        judge_all(scored(records, rescored), horizons(scoring, horizon_days), end) if end else []
    )
    return {
        "assessments": len(rescored),
        "assessments_changed": sum(r.changed for r in rescored),
        "accounts": len(latest),
        "churned": len(churned),
        "changes": changes,
        "at_risk": {
            "old": confusion(old_flagged, churned).as_dict(),
            "new": confusion(new_flagged, churned).as_dict(),
        },
        "judgement": [j.model_dump() for j in judgements],
        "warnings": usage_warnings(records, scoring),
    }
