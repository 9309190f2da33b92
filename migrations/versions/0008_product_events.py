"""Product events in (Segment's tracking API): write keys, raw events, who belongs to
which account, the daily rollup with distinct active users, account traits (MRR, plan,
seats) and the tutorials events completed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "event_user_group",
        sa.Column("user_key", sa.String(length=200), nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_key"),
    )
    op.create_table(
        "account_traits",
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("mrr", sa.Float(), nullable=True),
        sa.Column("plan", sa.String(), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "active_user_day",
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_key", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", "user_key"),
    )
    op.create_table(
        "product_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=True),
        sa.Column("user_key", sa.String(), nullable=True),
        sa.Column("group_id", sa.String(), nullable=True),
        sa.Column("customer_id", sa.String(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    # Only the events waiting for their account are looked up by group or user.
    for column in ("group_id", "user_key"):
        op.create_index(
            f"ix_product_event_waiting_{column}",
            "product_event",
            [column],
            unique=False,
            postgresql_where=sa.text("customer_id IS NULL"),
            sqlite_where=sa.text("customer_id IS NULL"),
        )
    op.create_index("ix_product_event_received_at", "product_event", ["received_at"], unique=False)
    op.create_table(
        "tutorial_completion",
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("tutorial", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("told_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id", "tutorial"),
    )
    op.create_index(
        "ix_tutorial_completion_told_at", "tutorial_completion", ["told_at"], unique=False
    )
    op.create_table(
        "usage_daily",
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "metric", "day"),
    )


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_index("ix_tutorial_completion_told_at", table_name="tutorial_completion")
    op.drop_table("tutorial_completion")
    op.drop_index("ix_product_event_received_at", table_name="product_event")
    op.drop_index("ix_product_event_waiting_user_key", table_name="product_event")
    op.drop_index("ix_product_event_waiting_group_id", table_name="product_event")
    op.drop_table("product_event")
    op.drop_table("active_user_day")
    op.drop_table("account_traits")
    op.drop_table("event_user_group")
    op.drop_table("event_source")
