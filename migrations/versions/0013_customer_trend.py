"""The customer's latest trend, beside the rest of its standing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 20:30:00.000000

The row keeps the latest assessment's quadrant, level and scores; with its trend too,
an email shows the account's standing from the row it reads anyway, not from one more
read of the assessments. Existing rows are filled in from their latest assessment.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("trend", sa.Float(), nullable=True))
    op.execute(
        "UPDATE customer SET trend = (SELECT a.trend FROM assessment a "
        "WHERE a.customer_id = customer.id ORDER BY a.assessed_at DESC, a.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("trend")
