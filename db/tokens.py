"""API tokens: made for a staff member (whose role they act with), shown once, stored
as SHA-256, revocable; every change is in the audit log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import col, select

from db.engine import session_scope
from db.staff import StaffError, find_staff
from models.staff import Staff
from models.tables import ApiToken, AuditEntry

TOKEN_PREFIX = "tdm_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    engine: Engine, name: str, person: str, actor: str = "cli"
) -> tuple[ApiToken, str]:
    """A token for an active staff member (by email); it acts with their role."""
    if not name.strip():
        raise StaffError("name", "must not be blank")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        staff = find_staff(session, person)
        if staff is None or not staff.active:
            raise StaffError("person", f"{person.strip().lower()} is not an active staff member")
        row = ApiToken(
            name=name.strip(),
            staff_id=staff.id,
            role=staff.role,
            person=staff.email,
            token_hash=hash_token(token),
            prefix=token[:10],
        )
        session.add(row)
        session.add(
            AuditEntry(
                actor=actor,
                action="token.created",
                subject=row.prefix,
                detail={"name": row.name, "role": staff.role, "person": staff.email},
            )
        )
        session.flush()
        session.refresh(row)
    return row, token


def list_tokens(engine: Engine) -> list[ApiToken]:
    with session_scope(engine) as session:
        return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))).all())


def revoke_token(engine: Engine, token_id: int, actor: str = "cli") -> ApiToken | None:
    with session_scope(engine) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            session.add(row)
            session.add(
                AuditEntry(
                    actor=actor,
                    action="token.revoked",
                    subject=row.prefix,
                    detail={"name": row.name},
                )
            )
        return row


def has_admin(engine: Engine) -> bool:
    """Whether anyone can get in as an admin: an active admin with a live token, or a
    token from before staff existed that was made for the admin role."""
    with session_scope(engine) as session:
        live = col(ApiToken.revoked_at).is_(None)
        staff_admin = (
            select(ApiToken.id)
            .join(Staff, Staff.id == ApiToken.staff_id)
            .where(live, Staff.role == "admin", col(Staff.active).is_(True))
        )
        legacy_admin = select(ApiToken.id).where(
            live, col(ApiToken.staff_id).is_(None), ApiToken.role == "admin"
        )
        return any(session.exec(q).first() is not None for q in (staff_admin, legacy_admin))
