"""API tokens: created with a role, shown once, stored as SHA-256, revocable; every
change is in the audit log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import col, select

from db.engine import session_scope
from models.roles import Role
from models.tables import ApiToken, AuditEntry

TOKEN_PREFIX = "tdm_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    engine: Engine, name: str, role: str, person: str | None = None, actor: str = "cli"
) -> tuple[ApiToken, str]:
    if role not in list(Role):
        raise ValueError(f"role must be one of {', '.join(Role)}, got {role!r}")
    if not name.strip():
        raise ValueError("name must not be blank")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        row = ApiToken(
            name=name.strip(),
            role=role,
            person=person,
            token_hash=hash_token(token),
            prefix=token[:10],
        )
        session.add(row)
        session.add(
            AuditEntry(
                actor=actor,
                action="token.created",
                subject=row.prefix,
                detail={"name": row.name, "role": role, "person": person},
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
    with session_scope(engine) as session:
        return (
            session.exec(
                select(ApiToken.id).where(
                    ApiToken.role == "admin", col(ApiToken.revoked_at).is_(None)
                )
            ).first()
            is not None
        )
