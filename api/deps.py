"""Everything a route depends on, in one place: settings, records, Temporal, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from api.errors import ApiError
from api.security import RateLimiter, same_secret
from db.tokens import hash_token
from lifecycles import connect
from models.roles import Role
from models.staff import Staff
from models.tables import ApiToken
from settings import Settings


class Principal(BaseModel):
    """Who is calling: a staff member, by an API token of theirs or a browser session
    made from one. (A token from before staff existed acts with the role it was made
    with, and `person` as recorded on it.)"""

    token_id: int
    name: str
    role: Role
    person: str | None = None

    @property
    def actor(self) -> str:
        return self.person or self.name

    @property
    def rep_view(self) -> str | None:
        """For a rep, whose accounts and tasks they see (their email; "" sees nothing);
        None for managers and admins, who see everything."""
        return (self.person or "") if self.role is Role.rep else None


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


async def get_client(request: Request) -> Client:
    """One Temporal client per app, connected on first use so the API can start first."""
    state = request.app.state
    async with state.client_lock:
        if state.client is None:
            try:
                state.client = await connect(state.settings)
            except RuntimeError as error:
                raise ApiError(
                    503, "temporal_unavailable", f"cannot reach Temporal: {error}"
                ) from None
    return state.client


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ClientDep = Annotated[Client, Depends(get_client)]


def _principal(session: Session, row: ApiToken | None) -> Principal | None:
    if row is None or row.revoked_at is not None or row.id is None:
        return None
    role, person = row.role, row.person
    if row.staff_id is not None:
        staff = session.get(Staff, row.staff_id)
        if staff is None or not staff.active:  # a deactivated person's tokens stop at once
            return None
        role, person = staff.role, staff.email
    now = datetime.now(UTC)
    # Note use, but not on every request: a write per call would cost more than it tells.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        row.last_used_at = now
        session.add(row)
        session.commit()
    return Principal(token_id=row.id, name=row.name, role=Role(role), person=person)


def principal_for_token(session: Session, token: str) -> Principal | None:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    return _principal(session, row)


def principal_for_session(request: Request, session: Session) -> Principal | None:
    """A browser session names its token; a revoked token ends the session too."""
    token_id = request.scope.get("session", {}).get("token_id")
    return _principal(session, session.get(ApiToken, token_id)) if token_id else None


CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def current_principal(request: Request, session: SessionDep) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        principal = principal_for_token(session, token.strip())
    else:
        principal = principal_for_session(request, session)
        # The browser sends the session cookie with any same-site request, a page's
        # `no-cors` POST included; such a request cannot carry a header of its own, so
        # a change made on the cookie needs the session's CSRF token in one.
        change = request.method not in SAFE_METHODS
        sent = request.headers.get(CSRF_HEADER)
        if principal and change and not same_secret(request.session.get("csrf", ""), sent):
            raise ApiError(
                403,
                "csrf",
                f"a change on a browser session needs its CSRF token in {CSRF_HEADER}; "
                "API clients send Authorization: Bearer <token>",
            )
    if principal is None:
        raise ApiError(401, "unauthorized", "a valid API token is required (Authorization: Bearer)")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def rate_limit(name: str):  # type: ignore[no-untyped-def]
    """A dependency that refuses a client (by address) past the named limit with a 429."""

    def check(request: Request) -> None:
        limiter: RateLimiter = request.app.state.rate_limits[name]
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(client):
            raise ApiError(429, "rate_limited", f"too many {name} requests; try again shortly")

    return Depends(check)


def require(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that admits only the given roles."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise ApiError(403, "forbidden", f"this needs the {allowed} role")
        return principal

    return Depends(check)


ManagerDep = Annotated[Principal, require(Role.manager, Role.admin)]
AdminDep = Annotated[Principal, require(Role.admin)]
