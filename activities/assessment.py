"""The assessment activity: read the stored signals, score them (pure code in
`models.scoring`), store the assessment and the customer's new position."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import CompoundSelect, Engine, bindparam, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio import activity

from activities import events
from activities.contracts import AssessmentRequest
from db.engine import insert_rows, session_scope
from db.peers import PeerCache
from db.queries import PlanAndStanding, Standing, latest_recorded_plan
from db.usage import usage_signals
from models.contacts import Contact, ContactStatus
from models.scoring import Assessment, assess
from models.signals import STANDING, Observation, StoredSignal, observation
from models.tables import AssessmentRecord, Customer, SignalRecord

_SCORED_COLUMNS = list(StoredSignal.__annotations__)


def _observations(
    session: Session, customer_id: str, request: AssessmentRequest
) -> list[Observation]:
    since = request.as_of - timedelta(days=request.scoring.lookback_days)
    window = {"customer_id": customer_id, "since": since, "as_of": request.as_of}
    rows = session.execute(_SCORED_SIGNALS, window).all()
    answered = {r.contact_email for r in rows if r.contact_email}
    if answered:
        # A contact's answers count while they are at the account: one who left (or
        # bounces, or was removed) no longer speaks for it.
        present = set(
            session.exec(
                select(Contact.email).where(
                    Contact.customer_id == customer_id,
                    Contact.status == ContactStatus.active.value,
                    col(Contact.email).in_(answered),
                )
            )
        )
        rows = [r for r in rows if r.contact_email is None or r.contact_email in present]
    return [observation(r) for r in rows] + usage_signals(
        session, customer_id, since, request.as_of
    )


def _scored_signals() -> CompoundSelect:
    """The columns scoring reads (StoredSignal), not whole rows, of the signals in the
    window; and per standing kind (seats, MRR) its latest reading before the window, which
    may still hold inside it (models/scoring decides). One statement."""
    columns = [getattr(SignalRecord, name) for name in _SCORED_COLUMNS]
    customer = SignalRecord.customer_id == bindparam("customer_id")
    observed = col(SignalRecord.observed_at)
    window = select(*columns).where(
        customer, observed > bindparam("since"), observed <= bindparam("as_of")
    )
    standing = [
        select(*columns)
        .where(customer, SignalRecord.kind == kind.value, observed <= bindparam("since"))
        .order_by(observed.desc(), col(SignalRecord.id).desc())
        .limit(1)
        .subquery()
        for kind in sorted(STANDING)
    ]
    return union_all(window, *(select(latest) for latest in standing))


# Built once: building it for each assessment took ten times as long as running it.
_SCORED_SIGNALS = _scored_signals()


# Built once, like _SCORED_SIGNALS: every check-in looks for its assessment and takes
# its turn on the customer's row.
_STORED = select(AssessmentRecord).where(
    AssessmentRecord.customer_id == bindparam("customer_id"),
    AssessmentRecord.key == bindparam("key"),
)
# SQLite locks the whole file for a writer, and its driver begins a transaction only at
# the first write: a write that changes nothing takes the lock.
_TAKE_LOCK = (
    update(Customer).where(col(Customer.id) == bindparam("customer_id")).values(id=Customer.id)
)
_TAKE_LOCK_AND_READ = _TAKE_LOCK.returning(Customer)


def _stored(session: Session, request: AssessmentRequest) -> AssessmentRecord | None:
    key = {"customer_id": request.customer_id, "key": request.key}
    return session.exec(_STORED, params=key).first()


def _take_turn(session: Session, customer_id: str) -> Customer | None:
    """The customer row, locked before anything else is read or written: a check-in and
    a reassessment at once then take turns on the customer's standing instead of one
    overwriting the other's, and the assessment's insert (its foreign key shares the
    row's lock on PostgreSQL) cannot deadlock with them."""
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        return session.get(Customer, customer_id, with_for_update=True)
    customer = {"customer_id": customer_id}
    if not dialect.update_returning:  # SQLite before 3.35: lock, then read
        session.exec(_TAKE_LOCK, params=customer)
        return session.get(Customer, customer_id)
    return session.scalars(_TAKE_LOCK_AND_READ, customer).first()


class Assessed(NamedTuple):
    assessment: Assessment
    # The customer's row, locked and moved to the new standing; None when the customer
    # has no row, or when a retry found the assessment already stored.
    customer: Customer | None
    # The plan it read and the standing it stored, when that is now the customer's
    # latest: the check-in's report shows them.
    known: PlanAndStanding | None = None
    # Stored by this call, not found stored by an earlier attempt.
    stored_now: bool = True


class AssessmentActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.peers = PeerCache()

    @activity.defn(name="assess_account")
    def assess_account(self, request: AssessmentRequest) -> Assessment:
        try:
            return self._assess(request)
        except IntegrityError:
            # Two attempts at the same step raced (one timed out but still running beside
            # its retry): the one stored first is the answer.
            with session_scope(self.engine) as session:
                stored = _stored(session, request)
            if stored is None:
                raise
            return Assessment.model_validate(stored.detail)

    def _assess(self, request: AssessmentRequest) -> Assessment:
        with session_scope(self.engine) as session:
            return self.assess_in(session, request).assessment

    def assess_in(self, session: Session, request: AssessmentRequest) -> Assessed:
        """Score the account and store the assessment in the caller's transaction (a
        check-in's, with its report: activities/accounts.py); the stored one if a
        retry finds it there."""
        stored = _stored(session, request)
        if stored is not None:  # a retry after the commit: same answer, no second row
            return Assessed(Assessment.model_validate(stored.detail), None, stored_now=False)
        customer = _take_turn(session, request.customer_id)
        plan = latest_recorded_plan(session, request.customer_id)
        peers = None
        if customer is not None:
            peers = self.peers.get(session, customer.plan_name, request.as_of, request.scoring)
        assessment = assess(
            _observations(session, request.customer_id, request),
            request.scoring,
            request.as_of,
            success_plan=None if plan is None else plan.success_plan(),
            plan_started=None if plan is None else plan.started,
            previous=request.previous,
            peers=peers,
        )
        record = AssessmentRecord(
            customer_id=request.customer_id,
            key=request.key,
            assessed_at=assessment.assessed_at,
            customer_score=assessment.customer_score,
            company_score=assessment.company_score,
            quadrant=assessment.quadrant.value,
            level=assessment.level,
            trend=assessment.trend,
            churn_risk=assessment.churn_risk,
            detail=assessment.model_dump(mode="json"),
        )
        insert_rows(session, record)  # no one reads its id: a plain INSERT, no unit of work
        known = None
        if customer is not None:
            was_at_risk = customer.at_risk
            latest = customer.stand(record)
            if latest:
                customer.at_risk = assessment.at_risk  # by the plan's rule
                known = PlanAndStanding(plan, Standing.of(record))
            session.add(customer)
            events.assessed(session, customer, record, latest, was_at_risk)
        return Assessed(assessment, customer, known)
