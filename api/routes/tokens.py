"""API tokens (admins): each belongs to a staff member; the token itself is returned
once, at creation."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminDep, EngineDep
from api.errors import ApiError, not_found
from db.staff import StaffError
from db.tokens import create_token, list_tokens, revoke_token
from models.roles import Role

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="what uses it, e.g. 'laptop'")
    person: str = Field(min_length=3, max_length=320, description="the staff member's email")


class TokenView(BaseModel):
    id: int
    name: str
    staff_id: int | None = Field(description="the staff member it belongs to")
    role: Role = Field(description="the role it was made with (it acts with the person's)")
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
        row, token = create_token(engine, request.name, request.person, admin.actor)
    except StaffError as error:
        raise ApiError(422, "invalid", str(error), error.field) from None
    return NewToken(token=token, **TokenView.model_validate(row, from_attributes=True).model_dump())


@router.delete("/{token_id}", response_model=TokenView)
def revoke(token_id: int, engine: EngineDep, admin: AdminDep) -> TokenView:
    row = revoke_token(engine, token_id, admin.actor)
    if row is None:
        raise not_found("token", str(token_id))
    return TokenView.model_validate(row, from_attributes=True)
