"""Write keys of product-event sources: created by name, shown once, stored as SHA-256,
revocable; every change is in the audit log."""

from __future__ import annotations

import secrets
import time
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
            _LIVE.clear()
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


# Live keys seen lately, by database and key hash: (until, source id). Every batch comes
# with its key; asking the database each time would be one more round trip per batch.
# A key revoked here is forgotten at once, one revoked by another process within
# LIVE_SECONDS.
_LIVE: dict[tuple[str, str], tuple[float, int]] = {}
LIVE_SECONDS = 2.0


def source_for_key(session: Session, key: str) -> int | None:
    """The id of the live source this write key belongs to, or None."""
    key_hash, database, now = hash_token(key), str(session.get_bind().url), time.monotonic()
    known = _LIVE.get((database, key_hash))
    if known is not None and known[0] > now:
        return known[1]
    query = select(EventSource.id).where(
        EventSource.key_hash == key_hash, col(EventSource.revoked_at).is_(None)
    )
    source_id = session.exec(query).first()
    if source_id is not None:
        _LIVE[(database, key_hash)] = (now + LIVE_SECONDS, source_id)
    return source_id
