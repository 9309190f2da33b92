"""API tokens (admins): the token itself is returned once, at creation."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminDep, EngineDep
from api.errors import ApiError, not_found
from db.tokens import create_token, list_tokens, revoke_token
from models.roles import Role

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    person: str | None = Field(default=None, description="the rep or manager, as tasks name them")


class TokenView(BaseModel):
    id: int
    name: str
    role: Role
    person: str | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewToken(TokenView):
    token: str = Field(description="shown this once; only its hash is stored")


@router.get("", response_model=list[TokenView])
def tokens(engine: EngineDep, _: AdminDep) -> list[TokenView]:
    return [TokenView.model_validate(t, from_attributes=True) for t in list_tokens(engine)]


@router.post("", response_model=NewToken, status_code=201)
def new_token(request: TokenRequest, engine: EngineDep, admin: AdminDep) -> NewToken:
    try:
        row, token = create_token(engine, request.name, request.role, request.person, admin.actor)
    except ValueError as error:
        raise ApiError(422, "invalid", str(error)) from None
    return NewToken(token=token, **TokenView.model_validate(row, from_attributes=True).model_dump())


@router.delete("/{token_id}", response_model=TokenView)
def revoke(token_id: int, engine: EngineDep, admin: AdminDep) -> TokenView:
    row = revoke_token(engine, token_id, admin.actor)
    if row is None:
        raise not_found("token", str(token_id))
    return TokenView.model_validate(row, from_attributes=True)
