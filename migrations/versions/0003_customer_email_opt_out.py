"""The customer's email opt-out: when they unsubscribed, and who recorded it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:00:00.000000

Both columns are nullable (nobody has unsubscribed yet), so adding them rewrites no
rows; batch mode lets SQLite drop them again on a downgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unsubscribed_by", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("unsubscribed_by")
        batch.drop_column("unsubscribed_at")
