"""What a cohort run shows, read from the records DB and the monthly status snapshots:
quadrant counts per month, churn and retention per segment, tasks opened and escalated,
and which playbook moved whom. Plain dicts of numbers and strings, with no wall-clock
times, so one seed gives byte-identical JSON."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from sqlmodel import Session, col, select

from models.tables import AssessmentRecord, Customer, TaskRecord
from simulation.cohort import CohortRun

QUADRANTS = [
    "happy_profitable", "unhappy_profitable", "happy_unprofitable", "unhappy_unprofitable",
    "neutral", "unknown",
]  # fmt: skip
MOVE = 0.05  # closer to the happy-profitable corner by at least this much counts as a move
FOLLOWING_CHECK_INS = 2


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _distance(x: float | None, y: float | None) -> float | None:
    """Distance to the far happy-profitable corner (1, 1): smaller is better."""
    if x is None or y is None:
        return None
    return math.hypot(1 - x, 1 - y)


def summarize(run: CohortRun) -> dict[str, Any]:
    with Session(run.engine) as session:
        customers = {c.id: c for c in session.exec(select(Customer))}
        tasks = list(session.exec(select(TaskRecord).order_by(col(TaskRecord.id))))
        assessments = list(
            session.exec(
                select(AssessmentRecord).order_by(
                    col(AssessmentRecord.customer_id),
                    col(AssessmentRecord.assessed_at),
                    col(AssessmentRecord.id),
                )
            )
        )
    segment_of = {a.customer_id: a.segment for a in run.accounts}
    history: dict[str, list[AssessmentRecord]] = defaultdict(list)
    for record in assessments:
        history[record.customer_id].append(record)
    return {
        "plan": run.plan.label,
        "months": _months(run),
        "cohorts": _cohorts(run, customers),
        "totals": _totals(run, customers),
        "tasks": _tasks(tasks, segment_of),
        "playbooks": _playbooks(tasks, history, segment_of),
        "final_positions": _final_positions(run, customers, history),
    }


def _months(run: CohortRun) -> list[dict[str, Any]]:
    rows = []
    for snapshot in run.snapshots:
        counts = Counter(p.quadrant for p in snapshot.positions.values())
        rows.append(
            {
                "month": snapshot.month,
                "day": snapshot.month * 30,
                "active": len(snapshot.positions),
                "churned": len(snapshot.churned),
                "quadrants": {q: counts.get(q, 0) for q in QUADRANTS},
            }
        )
    return rows


def _churned(customer: Customer | None) -> bool:
    return customer is not None and customer.phase == "churned"


def _cohorts(run: CohortRun, customers: dict[str, Customer]) -> dict[str, Any]:
    cohorts: dict[str, dict[str, Any]] = {}
    for account in run.accounts:
        entry = cohorts.setdefault(
            account.segment,
            {
                "price_per_seat": account.behaviour.price_per_seat,
                "customers": 0,
                "churned": 0,
                "retained": 0,
                "churn_reasons": Counter(),
                "renewal_outcomes": Counter(),
            },
        )
        customer = customers.get(account.customer_id)
        entry["customers"] += 1
        if _churned(customer):
            entry["churned"] += 1
            assert customer is not None
            entry["churn_reasons"][customer.churn_reason or "unknown"] += 1
        else:
            entry["retained"] += 1
        if customer is not None and customer.renewal_outcome:
            entry["renewal_outcomes"][customer.renewal_outcome] += 1
    for entry in cohorts.values():
        entry["retention"] = _r(entry["retained"] / entry["customers"])
        entry["churn_reasons"] = dict(sorted(entry["churn_reasons"].items()))
        entry["renewal_outcomes"] = dict(sorted(entry["renewal_outcomes"].items()))
    return dict(sorted(cohorts.items()))


def _totals(run: CohortRun, customers: dict[str, Customer]) -> dict[str, Any]:
    churned = sum(_churned(customers.get(a.customer_id)) for a in run.accounts)
    size = len(run.accounts)
    return {
        "customers": size,
        "churned": churned,
        "retained": size - churned,
        "retention": _r((size - churned) / size) if size else None,
    }


def _tasks(tasks: list[TaskRecord], segment_of: dict[str, str]) -> dict[str, Any]:
    opened: Counter[str] = Counter()
    escalated: Counter[str] = Counter()
    reminded: Counter[str] = Counter()
    late: Counter[str] = Counter()
    still_open: Counter[str] = Counter()
    escalated_by_segment: Counter[str] = Counter()
    for task in tasks:
        opened[task.kind] += 1
        reminded[task.kind] += task.reminded
        escalated[task.kind] += task.escalated
        if task.escalated:
            escalated_by_segment[segment_of.get(task.customer_id, "?")] += 1
        if task.completed_at is not None and task.completed_at > task.due_at:
            late[task.kind] += 1
        if task.status == "open":
            still_open[task.kind] += 1
    kinds = sorted(opened)
    return {
        "opened": {k: opened[k] for k in kinds},
        "reminded": {k: reminded[k] for k in kinds},
        "escalated": {k: escalated[k] for k in kinds},
        "completed_late": {k: late[k] for k in kinds},
        "still_open": {k: still_open[k] for k in kinds},
        "escalated_by_segment": dict(sorted(escalated_by_segment.items())),
        "total_opened": sum(opened.values()),
        "total_escalated": sum(escalated.values()),
    }


def _assessment_key(task_id: str) -> str:
    """`<customer>:t<term>:playbook-check_in-3` was opened by `<customer>:t<term>:check_in-3`."""
    return task_id.replace(":playbook-", ":", 1)


def _moved(source: AssessmentRecord, later: list[AssessmentRecord]) -> bool:
    before = _distance(source.customer_score, source.company_score)
    if before is None:
        return False
    for record in later[:FOLLOWING_CHECK_INS]:
        after = _distance(record.customer_score, record.company_score)
        if after is not None and after <= before - MOVE:
            return True
    return False


def _playbooks(
    tasks: list[TaskRecord],
    history: dict[str, list[AssessmentRecord]],
    segment_of: dict[str, str],
) -> dict[str, Any]:
    opened: dict[str, set[str]] = defaultdict(set)
    moved: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for task in tasks:
        if task.kind != "playbook" or not task.playbook:
            continue
        counts[task.playbook] += 1
        opened[task.playbook].add(task.customer_id)
        records = history.get(task.customer_id, [])
        key = _assessment_key(task.id)
        index = next((i for i, r in enumerate(records) if r.key == key), None)
        if index is not None and _moved(records[index], records[index + 1 :]):
            moved[task.playbook].add(task.customer_id)
    summary = {}
    for situation in sorted(opened):
        by_segment: dict[str, dict[str, int]] = {}
        for customer_id in sorted(opened[situation]):
            entry = by_segment.setdefault(
                segment_of.get(customer_id, "?"), {"accounts": 0, "moved": 0}
            )
            entry["accounts"] += 1
            entry["moved"] += customer_id in moved[situation]
        summary[situation] = {
            "tasks": counts[situation],
            "accounts": len(opened[situation]),
            "moved_toward_happy_profitable": len(moved[situation]),
            "moved": sorted(moved[situation]),
            "by_segment": dict(sorted(by_segment.items())),
        }
    return summary


def _final_positions(
    run: CohortRun, customers: dict[str, Customer], history: dict[str, list[AssessmentRecord]]
) -> list[dict[str, Any]]:
    positions = []
    for account in run.accounts:
        records = history.get(account.customer_id, [])
        last = records[-1] if records else None
        positions.append(
            {
                "customer": account.customer_id,
                "segment": account.segment,
                "quadrant": last.quadrant if last else "unknown",
                "customer_score": _r(last.customer_score) if last else None,
                "company_score": _r(last.company_score) if last else None,
                "churned": _churned(customers.get(account.customer_id)),
            }
        )
    return positions
