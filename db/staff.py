"""The staff directory: add people, list them with their open accounts, deactivate and
reactivate them. Every change is in the audit log."""

from __future__ import annotations

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from db.engine import session_scope
from models.customer import EmailAddress
from models.roles import Role
from models.staff import Staff, StaffPublic
from models.tables import AuditEntry, Customer

CHURNED = "churned"


class StaffError(ValueError):
    """A staff change refused: which field, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def normalize_email(email: str) -> str:
    """Staff are known by their address, compared without case."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(EmailAddress).validate_python(email.strip()).lower()
    except ValidationError as error:
        message = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise StaffError("email", message) from None


def find_staff(session: Session, email: str) -> Staff | None:
    return session.exec(select(Staff).where(Staff.email == email.strip().lower())).first()


def find_person(engine: Engine, email: str) -> StaffPublic | None:
    with session_scope(engine) as session:
        row = find_staff(session, email)
        return None if row is None else public(row, {})


def open_accounts(session: Session) -> dict[str, int]:
    """Per person, the accounts not churned that they manage or are rep on."""
    counts: dict[str, int] = {}
    for column in (Customer.owner, Customer.rep):
        rows = session.exec(
            select(column, func.count())
            .where(col(column).is_not(None), Customer.phase != CHURNED)
            .group_by(column)
        ).all()
        for person, n in rows:
            counts[person] = counts.get(person, 0) + n
    return counts


def public(row: Staff, counts: dict[str, int]) -> StaffPublic:
    assert row.id is not None
    return StaffPublic(
        id=row.id,
        name=row.name,
        email=row.email,
        role=Role(row.role),
        active=row.active,
        open_accounts=counts.get(row.email, 0),
    )


def add_staff(engine: Engine, name: str, email: str, role: str, actor: str) -> StaffPublic:
    if not name.strip():
        raise StaffError("name", "must not be blank")
    if role not in Role.__members__:
        raise StaffError("role", f"must be one of {', '.join(Role)}, got {role!r}")
    address = normalize_email(email)
    with session_scope(engine) as session:
        if find_staff(session, address) is not None:
            raise StaffError("email", f"{address} is already on the staff")
        row = Staff(name=name.strip(), email=address, role=role)
        session.add(row)
        session.add(
            AuditEntry(
                actor=actor,
                action="staff.added",
                subject=address,
                detail={"name": row.name, "role": role},
            )
        )
        session.flush()
        return public(row, {})


def list_staff(session: Session, include_inactive: bool = True) -> list[StaffPublic]:
    query = select(Staff).order_by(col(Staff.role), col(Staff.email))
    if not include_inactive:
        query = query.where(col(Staff.active).is_(True))
    counts = open_accounts(session)
    return [public(row, counts) for row in session.exec(query).all()]


def set_active(engine: Engine, email: str, active: bool, actor: str) -> StaffPublic:
    """Deactivating keeps the person's history; their tokens stop working at once and
    new accounts are no longer given to them. Their current accounts stay theirs until
    reassigned (`tandem assign`), so nothing is silently moved."""
    with session_scope(engine) as session:
        row = find_staff(session, email)
        if row is None:
            raise StaffError("email", f"no staff member {email.strip().lower()!r}")
        if row.active != active:
            row.active = active
            session.add(row)
            session.add(
                AuditEntry(
                    actor=actor,
                    action="staff.activated" if active else "staff.deactivated",
                    subject=row.email,
                    detail={"name": row.name, "role": row.role},
                )
            )
        return public(row, open_accounts(session))


def staff_emails(session: Session, role: Role) -> list[str]:
    """Active people of a role, by email."""
    return list(
        session.exec(
            select(Staff.email).where(Staff.role == role.value, col(Staff.active).is_(True))
        ).all()
    )


def is_staff(session: Session, email: str, *roles: Role) -> bool:
    query = select(Staff.id).where(Staff.email == email, col(Staff.active).is_(True))
    if roles:
        query = query.where(or_(*(Staff.role == r.value for r in roles)))
    return session.exec(query).first() is not None
