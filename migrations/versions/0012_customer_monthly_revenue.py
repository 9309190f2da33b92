"""The customer's revenue per month, from its latest assessment.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 18:00:00.000000

The renewal forecast's figure for an account with no MRR on record was the revenue
signals of the last 30 days, summed as they came: a quarterly invoice counted in full
one month and not at all the next two, and a reading sent twice counted twice. The
assessment already works out revenue per month (each reading once, spread over the
period it covers); the row now keeps its latest. Existing rows are filled in from
their latest assessment's `revenue` input, where it has one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("monthly_revenue", sa.Float(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        revenue = "CAST(a.detail -> 'inputs' ->> 'revenue' AS DOUBLE PRECISION)"
    else:
        revenue = "json_extract(a.detail, '$.inputs.revenue')"
    op.execute(
        f"UPDATE customer SET monthly_revenue = (SELECT {revenue} FROM assessment a "
        "WHERE a.customer_id = customer.id ORDER BY a.assessed_at DESC, a.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("monthly_revenue")
