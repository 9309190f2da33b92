"""What a manager's digest says: their book of business over one period.

`manager_books` is the one place that decides who is a manager and which accounts are
theirs; everything else asks it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, col, select

from db.staff import staff_emails
from models.digests import DigestPeriod
from models.lifecycle import Phase
from models.roles import Role
from models.tables import Customer, TaskRecord
from models.tasks import TaskStatus

RENEWALS_AHEAD = timedelta(days=90)


def manager_books(session: Session, unowned_to: str) -> dict[str, list[str]]:
    """Each active manager on the staff, with their live accounts (the customer's owner),
    even none. An account with no owner, or whose owner is no longer an active manager,
    is the managers' team address's (`TANDEM_MANAGERS_EMAIL`). With no managers on the
    staff at all, every owner named on an account counts as one, as assignment does."""
    managers = staff_emails(session, Role.manager)
    books: dict[str, list[str]] = {manager: [] for manager in managers}
    rows = session.exec(
        select(Customer.id, Customer.owner)
        .where(Customer.phase != Phase.churned.value)
        .order_by(col(Customer.id))
    )
    for customer_id, owner in rows:
        if owner is not None and (owner in books or (not managers and "@" in owner)):
            books.setdefault(owner, []).append(customer_id)
        else:
            books.setdefault(unowned_to, []).append(customer_id)
    return books


def _customer(row: Customer, public_url: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "company": row.company,
        "quadrant": row.quadrant,
        "previous_quadrant": row.previous_quadrant,
        "term_end": row.term_end,
        "link": f"{public_url}/app/customers/{quote(row.id, safe='')}",
    }


def _task(row: TaskRecord, company: str, public_url: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "company": company,
        "due_at": row.due_at,
        "owner": row.assignee or row.owner_role,
        "link": f"{public_url}/app/tasks/{quote(row.id, safe=':')}",
    }


def digest_content(
    session: Session, customer_ids: list[str], period: DigestPeriod, public_url: str
) -> dict[str, Any]:
    """The digest's sections, for the accounts in one manager's book."""
    public_url = public_url.rstrip("/")
    customers = session.exec(select(Customer).where(col(Customer.id).in_(customer_ids))).all()
    companies = {c.id: c.company for c in customers}
    moved = [
        c
        for c in customers
        if c.assessed_at is not None
        and period.start < c.assessed_at <= period.end
        and (c.previous_quadrant or "unknown") != c.quadrant
    ]
    renewals = [c for c in customers if period.end < c.term_end <= period.end + RENEWALS_AHEAD]
    open_tasks = session.exec(
        select(TaskRecord)
        .where(
            col(TaskRecord.customer_id).in_(customer_ids),
            TaskRecord.status == TaskStatus.open.value,
            col(TaskRecord.due_at) < period.end,
        )
        .order_by(col(TaskRecord.due_at))
    ).all()
    return {
        "moved": [_customer(c, public_url) for c in moved],
        "at_risk": [_customer(c, public_url) for c in customers if c.at_risk],
        "overdue": [
            _task(t, companies[t.customer_id], public_url) for t in open_tasks if not t.escalated
        ],
        "escalated": [
            _task(t, companies[t.customer_id], public_url) for t in open_tasks if t.escalated
        ],
        "renewals": [_customer(c, public_url) for c in sorted(renewals, key=lambda c: c.term_end)],
        "accounts": len(customers),
        "dashboard": f"{public_url}/",
    }


def digest_key(manager: str, period_end: datetime) -> str:
    return f"digest:{manager}:{period_end.isoformat()}"
