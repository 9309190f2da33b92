"""Write keys of product-event sources: created by name, shown once, stored as SHA-256,
revocable; every change is in the audit log."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.engine import session_scope
from db.tokens import hash_token
from models.product_events import EventSource
from models.tables import AuditEntry

KEY_PREFIX = "wk_"


def create_source(engine: Engine, name: str, actor: str = "cli") -> tuple[EventSource, str]:
    if not name.strip():
        raise ValueError("name must not be blank")
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    with session_scope(engine) as session:
        row = EventSource(name=name.strip(), key_hash=hash_token(key), prefix=key[:10])
        session.add(row)
        session.add(
            AuditEntry(
                actor=actor, action="source.created", subject=row.prefix, detail={"name": row.name}
            )
        )
        session.flush()
        session.refresh(row)
    return row, key


def list_sources(engine: Engine) -> list[EventSource]:
    with session_scope(engine) as session:
        return list(session.exec(select(EventSource).order_by(col(EventSource.id))).all())


def revoke_source(engine: Engine, ref: str, actor: str = "cli") -> EventSource | None:
    """By id, name or key prefix; a revoked key is refused from the next call on."""
    with session_scope(engine) as session:
        row = _find(session, ref)
        if row is not None and row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            session.add(row)
            session.add(
                AuditEntry(
                    actor=actor,
                    action="source.revoked",
                    subject=row.prefix,
                    detail={"name": row.name},
                )
            )
        return row


def _find(session: Session, ref: str) -> EventSource | None:
    if ref.isdigit():
        return session.get(EventSource, int(ref))
    query = select(EventSource).where((EventSource.name == ref) | (EventSource.prefix == ref))
    return session.exec(query.order_by(col(EventSource.id).desc())).first()


def source_for_key(session: Session, key: str) -> int | None:
    """The id of the live source this write key belongs to, or None."""
    query = select(EventSource.id).where(
        EventSource.key_hash == hash_token(key), col(EventSource.revoked_at).is_(None)
    )
    return session.exec(query).first()
