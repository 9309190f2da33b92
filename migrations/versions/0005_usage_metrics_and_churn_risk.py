"""Usage per metric over a period, and each assessment's churn risk.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 05:00:00.000000

A usage signal names its metric (an event type, a feature, `active_users`) and the start
of the period its count covers, so scoring reads daily rates; existing rows keep NULL:
the metric `usage`, a level read at one moment. An assessment carries the probability
that the account churns within the plan's horizon, and the customer row the latest one,
for the portfolio's renewal forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signal") as batch:
        batch.add_column(sa.Column("metric", sa.String(), nullable=True))
        batch.add_column(sa.Column("period_start", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("assessment") as batch:
        batch.add_column(sa.Column("churn_risk", sa.Float(), nullable=True))
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("churn_risk", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("churn_risk")
    with op.batch_alter_table("assessment") as batch:
        batch.drop_column("churn_risk")
    with op.batch_alter_table("signal") as batch:
        batch.drop_column("period_start")
        batch.drop_column("metric")
