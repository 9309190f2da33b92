"""Customers: a filtered, paginated list and one customer's whole picture."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SessionDep
from api.errors import not_found
from db.queries import CustomerFilters, CustomerNotFound, customer_overview, search_customers
from models.customer import CUSTOMER_ID_PATTERN
from models.public import CustomerDetailPublic, CustomersPublic

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("", response_model=CustomersPublic)
def list_customers(
    session: SessionDep,
    principal: PrincipalDep,
    filters: Annotated[CustomerFilters, Query()],
    cursor: Annotated[
        str | None,
        Query(
            pattern=CUSTOMER_ID_PATTERN,
            description="next_cursor of the page before: the id the next page starts after "
            "(any customer id is a valid place to start)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CustomersPublic:
    """Every account for managers and admins; for a rep, the accounts they are rep on."""
    rows = search_customers(session, filters, cursor, limit + 1, principal.rep_view)
    page = rows[:limit]
    return CustomersPublic(items=page, next_cursor=page[-1].id if len(rows) > limit else None)


@router.get("/{customer_id}", response_model=CustomerDetailPublic)
def get_customer(
    customer_id: str, session: SessionDep, principal: PrincipalDep
) -> CustomerDetailPublic:
    """One account's whole picture; a rep gets only the accounts they are rep on (any
    other is a 404, as if it did not exist) and, of its open tasks, their own."""
    try:
        return customer_overview(session, customer_id, rep_view=principal.rep_view)
    except CustomerNotFound:
        raise not_found("customer", customer_id) from None
