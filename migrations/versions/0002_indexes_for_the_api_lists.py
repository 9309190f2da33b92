"""Indexes for the API's lists and filters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:06:55.885134

Each leads with the filtered columns and ends with the list's order, so a page is read
from the index in order and the scan stops at the page's end.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, columns), in the models' order (`__table_args__` in models/tables.py).
INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_customer_quadrant_id", "customer", ["quadrant", "id"]),
    ("ix_customer_phase_id", "customer", ["phase", "id"]),
    ("ix_customer_owner_id", "customer", ["owner", "id"]),
    ("ix_customer_at_risk_id", "customer", ["at_risk", "id"]),
    ("ix_task_status_due_at_id", "task", ["status", "due_at", "id"]),
    ("ix_task_owner_role_status_due_at_id", "task", ["owner_role", "status", "due_at", "id"]),
    ("ix_task_assignee_status_due_at_id", "task", ["assignee", "status", "due_at", "id"]),
    ("ix_task_customer_id_status", "task", ["customer_id", "status"]),
    ("ix_signal_customer_id_kind_observed_at", "signal", ["customer_id", "kind", "observed_at"]),
    (
        "ix_assessment_customer_id_assessed_at_id",
        "assessment",
        ["customer_id", "assessed_at", "id"],
    ),
    ("ix_outbox_customer_id_created_at", "outbox", ["customer_id", "created_at"]),
    ("ix_timeline_customer_id_at_id", "timeline", ["customer_id", "at", "id"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
