"""Who the customer is, as a sign-up describes them."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, Field, field_validator

from models.plan import PLAN_NAME_PATTERN


def _email(value: str) -> str:
    # Syntax only (no DNS at sign-up); `.test` domains are allowed for trials and demos.
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


EmailAddress = Annotated[str, AfterValidator(_email)]

CUSTOMER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "customer"


class SignUp(BaseModel):
    """A new customer, from the CLI, a webhook or the Python client."""

    company: str = Field(min_length=1, max_length=200)
    contact_name: str = Field(min_length=1, max_length=200)
    email: EmailAddress
    plan: str = Field(
        default="default",
        pattern=PLAN_NAME_PATTERN,
        description="a plan template's name (not a file): `tandem plans list`",
    )
    external_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="the sender's own id (CRM, billing); makes the customer id",
    )
    owner: str | None = Field(default=None, description="the success manager who owns the account")
    annual_revenue: float | None = Field(default=None, ge=0)

    @field_validator("company", "contact_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @property
    def customer_id(self) -> str:
        """The same organisation and contact always get the same id, so a repeated
        sign-up finds the lifecycle that already exists instead of starting another."""
        if self.external_id:
            return slugify(self.external_id)
        digest = hashlib.sha256(self.email.lower().encode()).hexdigest()[:6]
        return f"{slugify(self.company)[:30]}-{digest}"


class CustomerProfile(BaseModel):
    """What the lifecycle carries about the customer: small, no history."""

    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    company: str
    contact_name: str
    email: EmailAddress
    owner: str | None = None
    external_id: str | None = None

    @classmethod
    def from_signup(cls, signup: SignUp) -> CustomerProfile:
        return cls(
            customer_id=signup.customer_id,
            company=signup.company,
            contact_name=signup.contact_name,
            email=signup.email,
            owner=signup.owner,
            external_id=signup.external_id,
        )


def workflow_id_for(customer_id: str) -> str:
    return f"customer-{customer_id}"
