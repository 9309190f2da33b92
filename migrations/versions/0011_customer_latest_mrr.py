"""The customer's latest MRR, and when it was observed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:00:00.000000

The portfolio's renewal forecast counts each renewing account's latest MRR. Looked up in
the signals, that was an index seek per renewing account (about 10,000 at 100,000
accounts); on the customer row it is read with the row. Existing rows are filled in from
the MRR signals they already have (the latest by observation time, then by id, as the
forecast read it); an account without any keeps NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _latest_mrr(column: str) -> str:
    # A plain correlated subquery: the same SQL runs on SQLite and PostgreSQL.
    return (
        f"(SELECT s.{column} FROM signal s WHERE s.customer_id = customer.id "
        "AND s.kind = 'mrr' ORDER BY s.observed_at DESC, s.id DESC LIMIT 1)"
    )


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("mrr", sa.Float(), nullable=True))
        batch.add_column(sa.Column("mrr_observed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        f"UPDATE customer SET mrr = {_latest_mrr('value')}, "
        f"mrr_observed_at = {_latest_mrr('observed_at')} "
        "WHERE EXISTS (SELECT 1 FROM signal s WHERE s.customer_id = customer.id "
        "AND s.kind = 'mrr')"
    )


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("mrr_observed_at")
        batch.drop_column("mrr")
