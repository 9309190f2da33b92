"""Customers: a filtered, paginated list and one customer's whole picture."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import PrincipalDep, SessionDep
from api.errors import ApiError, not_found
from db.queries import (
    CustomerFilters,
    CustomerNotFound,
    assessment_history,
    customer_overview,
    search_customers,
)

router = APIRouter(prefix="/customers", tags=["customers"])


class CustomerSummary(BaseModel):
    id: str
    company: str
    contact_name: str
    email: str
    owner: str | None
    phase: str
    term: int
    term_end: datetime
    plan: str
    quadrant: str
    level: float | None
    at_risk: bool
    renewal_outcome: str | None


class CustomerPage(BaseModel):
    items: list[CustomerSummary]
    next_cursor: str | None


class CustomerDetail(BaseModel):
    customer: dict[str, Any]
    success_plan: dict[str, Any] | None
    customer_words: dict[str, Any] | None
    goals: list[dict[str, Any]]
    open_tasks: list[dict[str, Any]]
    assessments: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


def _cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def _after(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "invalid", "cursor: not a cursor this API gave out", "cursor") from None


@router.get("", response_model=CustomerPage)
def list_customers(
    session: SessionDep,
    _: PrincipalDep,
    filters: Annotated[CustomerFilters, Query()],
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CustomerPage:
    rows = search_customers(session, filters, _after(cursor), limit + 1)
    page = rows[:limit]
    items = [
        CustomerSummary(plan=f"{c.plan_name}@v{c.plan_version}", **c.model_dump()) for c in page
    ]
    return CustomerPage(
        items=items, next_cursor=_cursor(page[-1].id) if len(rows) > limit and page else None
    )


@router.get("/{customer_id}", response_model=CustomerDetail)
def get_customer(customer_id: str, session: SessionDep, _: PrincipalDep) -> CustomerDetail:
    try:
        view = customer_overview(session, customer_id)
    except CustomerNotFound:
        raise not_found("customer", customer_id) from None
    history = assessment_history(session, view.customer["id"])
    return CustomerDetail(
        **view.model_dump(exclude={"assessment"}),
        assessments=[
            a.model_dump(
                include={
                    "assessed_at",
                    "quadrant",
                    "customer_score",
                    "company_score",
                    "level",
                    "trend",
                    "detail",
                }
            )
            for a in history
        ],
    )
