"""Who owns what: an account's manager and rep, and each task's assignee.

The records are the only place these decisions are made: the sign-up activity gives a
new account its manager, the activity that stores a task gives it its assignee, and
`tandem assign` / `POST /customers/{id}/assignment` move an account or a task. The
lifecycle carries none of it, so its history stays deterministic and a reassignment
needs no news to the workflow: the next task it opens reads the account as it is then.

The rules:
- a new account goes to the manager the sign-up names, when that is an active manager;
  otherwise to the active manager with the fewest open (not churned) accounts, ties by
  email. With no managers on the staff at all, the name given is kept as it was.
- a manager task goes to the account's manager; a rep task to the account's rep, or,
  when it has none, to the managers' queue (no assignee: managers see it, reps do not).
- every move is an audit row: who, what, from, to, when.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, func
from sqlmodel import Session, col, select

from db.engine import session_scope
from db.queries import find_customer
from db.staff import CHURNED, StaffError, find_staff, normalize_email
from models.roles import Role
from models.staff import Assignment, Staff
from models.tables import AuditEntry, Customer, TaskRecord

UNASSIGNED = "none"  # what `--rep none` means: the account has no rep from now on


def manager_for_new_account(session: Session, named: str | None) -> str | None:
    if named:
        person = find_staff(session, named)
        if person is not None and person.active and person.role == Role.manager:
            return person.email
    open_count = func.count(Customer.id)
    least_busy = session.exec(
        select(Staff.email)
        .outerjoin(Customer, and_(Customer.owner == Staff.email, Customer.phase != CHURNED))
        .where(Staff.role == Role.manager.value, col(Staff.active).is_(True))
        .group_by(Staff.email)
        .order_by(open_count, Staff.email)
        .limit(1)
    ).first()
    return least_busy or named


def assignee_for(customer: Customer | None, owner_role: str) -> str | None:
    """Who a new task of this role on this account goes to (None: the managers' queue)."""
    if customer is None:
        return None
    return customer.owner if owner_role == Role.manager.value else customer.rep


def _audit(session: Session, actor: str, action: str, subject: str, **detail: Any) -> None:
    session.add(AuditEntry(actor=actor, action=action, subject=subject, detail=detail))


def _person(session: Session, email: str, field: str, *roles: Role) -> str:
    address = normalize_email(email)
    person = find_staff(session, address)
    if person is None or not person.active:
        raise StaffError(field, f"{address} is not an active staff member")
    if person.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise StaffError(field, f"{address} is a {person.role}, not a {allowed}")
    return person.email


def reassign_account(
    engine: Engine,
    customer_ref: str,
    actor: str,
    manager: str | None = None,
    rep: str | None = None,
) -> Assignment:
    """Give an account a new manager and/or rep (`rep="none"` removes the rep); its open
    tasks move with it, by the same rule that assigns new ones."""
    if manager is None and rep is None:
        raise StaffError("manager", "give a manager, a rep, or both")
    with session_scope(engine) as session:
        customer = find_customer(session, customer_ref)
        new_manager = customer.owner
        new_rep = customer.rep
        if manager is not None:
            new_manager = _person(session, manager, "manager", Role.manager)
        if rep is not None:
            new_rep = (
                None
                if rep.strip().lower() == UNASSIGNED
                else _person(session, rep, "rep", Role.rep)
            )
        for field, old, new in (
            ("manager", customer.owner, new_manager),
            ("rep", customer.rep, new_rep),
        ):
            if old != new:
                _audit(
                    session,
                    actor,
                    "account.reassigned",
                    customer.id,
                    field=field,
                    **{"from": old, "to": new},
                )
        customer.owner, customer.rep = new_manager, new_rep
        session.add(customer)
        moved = []
        for task in session.exec(
            select(TaskRecord)
            .where(TaskRecord.customer_id == customer.id, TaskRecord.status == "open")
            .order_by(col(TaskRecord.id))
        ):
            assignee = assignee_for(customer, task.owner_role)
            if task.assignee != assignee:
                _audit(
                    session,
                    actor,
                    "task.reassigned",
                    task.id,
                    **{"from": task.assignee, "to": assignee},
                )
                task.assignee = assignee
                session.add(task)
                moved.append(task.id)
        return Assignment(
            customer_id=customer.id, manager=new_manager, rep=new_rep, tasks_moved=moved
        )


def reassign_task(engine: Engine, task_id: str, assignee: str, actor: str) -> TaskRecord:
    """Give one open task to a person: a rep task to a rep or a manager (taking it from
    the queue), a manager task to a manager."""
    with session_scope(engine) as session:
        task = session.get(TaskRecord, task_id)
        if task is None:
            raise LookupError(f"no task {task_id!r}")
        if task.status != "open":
            raise StaffError("task", f"{task_id} is {task.status}, only open tasks move")
        roles = (
            (Role.manager,) if task.owner_role == Role.manager.value else (Role.rep, Role.manager)
        )
        person = _person(session, assignee, "assignee", *roles)
        if task.assignee != person:
            _audit(
                session, actor, "task.reassigned", task.id, **{"from": task.assignee, "to": person}
            )
            task.assignee = person
            session.add(task)
        return task
