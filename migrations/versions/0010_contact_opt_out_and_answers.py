"""Contacts as recipients: each contact's own email opt-out, the contact an outbox copy
is for (and the lifecycle step it belongs to), and the contact who gave a survey answer.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:00:00.000000

Every column is nullable (no contact has opted out, old emails were one copy, old
answers were the account's), so adding them rewrites no rows; batch mode lets SQLite
drop them again on a downgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unsubscribed_by", sa.String(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("request_key", sa.String(length=240), nullable=True))
        batch.add_column(sa.Column("contact_email", sa.String(length=320), nullable=True))
        batch.create_index("ix_outbox_request_key", ["request_key"])
    with op.batch_alter_table("signal") as batch:
        batch.add_column(sa.Column("contact_email", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signal") as batch:
        batch.drop_column("contact_email")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_request_key")
        batch.drop_column("contact_email")
        batch.drop_column("request_key")
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("unsubscribed_by")
        batch.drop_column("unsubscribed_at")
