"""Initial schema: the tables as create_all made them before Tandem had migrations.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:06:07.968046

Every table and index is created only if missing: a records database made by
`create_all` (before Tandem had migrations) has them all and no alembic_version table,
so upgrading it adopts it here, then applies the later revisions, without a manual stamp.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("person", sa.String(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_api_token_role"), "api_token", ["role"], unique=False, if_not_exists=True
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_audit_log_action"), "audit_log", ["action"], unique=False, if_not_exists=True
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False, if_not_exists=True)
    op.create_index(
        op.f("ix_audit_log_subject"), "audit_log", ["subject"], unique=False, if_not_exists=True
    )
    op.create_table(
        "customer",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("company", sa.String(), nullable=False),
        sa.Column("contact_name", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("plan_name", sa.String(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("term_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("term_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("onboarded", sa.Boolean(), nullable=False),
        sa.Column("quadrant", sa.String(), nullable=False),
        sa.Column("level", sa.Float(), nullable=True),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("renewal_outcome", sa.String(), nullable=True),
        sa.Column("churn_reason", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_customer_at_risk"), "customer", ["at_risk"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_customer_company"), "customer", ["company"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_customer_external_id"),
        "customer",
        ["external_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_customer_owner"), "customer", ["owner"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_customer_phase"), "customer", ["phase"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_customer_quadrant"), "customer", ["quadrant"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_customer_term_end"), "customer", ["term_end"], unique=False, if_not_exists=True
    )
    op.create_table(
        "assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_score", sa.Float(), nullable=True),
        sa.Column("company_score", sa.Float(), nullable=True),
        sa.Column("quadrant", sa.String(), nullable=False),
        sa.Column("level", sa.Float(), nullable=True),
        sa.Column("trend", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_assessment_assessed_at"),
        "assessment",
        ["assessed_at"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_assessment_customer_id"),
        "assessment",
        ["customer_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=240), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=False),
        sa.Column("to_address", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("text_body", sa.String(), nullable=False),
        sa.Column("html_body", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("delivered_via", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_outbox_customer_id"), "outbox", ["customer_id"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_outbox_status"), "outbox", ["status"], unique=False, if_not_exists=True
    )
    op.create_table(
        "signal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("goal_key", sa.String(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "client_id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_signal_customer_id"), "signal", ["customer_id"], unique=False, if_not_exists=True
    )
    op.create_index(op.f("ix_signal_kind"), "signal", ["kind"], unique=False, if_not_exists=True)
    op.create_index(
        op.f("ix_signal_observed_at"), "signal", ["observed_at"], unique=False, if_not_exists=True
    )
    op.create_table(
        "success_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("intended_use", sa.String(), nullable=False),
        sa.Column("success_definition", sa.String(), nullable=False),
        sa.Column("objectives", sa.JSON(), nullable=False),
        sa.Column("constraints", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "version"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_success_plan_customer_id"),
        "success_plan",
        ["customer_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_success_plan_source"), "success_plan", ["source"], unique=False, if_not_exists=True
    )
    op.create_table(
        "task",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("owner_role", sa.String(), nullable=False),
        sa.Column("assignee", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded", sa.Boolean(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("playbook", sa.String(), nullable=True),
        sa.Column("email_key", sa.String(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_task_assignee"), "task", ["assignee"], unique=False, if_not_exists=True
    )
    op.create_index(
        op.f("ix_task_customer_id"), "task", ["customer_id"], unique=False, if_not_exists=True
    )
    op.create_index(op.f("ix_task_due_at"), "task", ["due_at"], unique=False, if_not_exists=True)
    op.create_index(op.f("ix_task_kind"), "task", ["kind"], unique=False, if_not_exists=True)
    op.create_index(
        op.f("ix_task_owner_role"), "task", ["owner_role"], unique=False, if_not_exists=True
    )
    op.create_index(op.f("ix_task_status"), "task", ["status"], unique=False, if_not_exists=True)
    op.create_table(
        "timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "key"),
        if_not_exists=True,
    )
    op.create_index(op.f("ix_timeline_at"), "timeline", ["at"], unique=False, if_not_exists=True)
    op.create_index(
        op.f("ix_timeline_customer_id"),
        "timeline",
        ["customer_id"],
        unique=False,
        if_not_exists=True,
    )
    op.create_table(
        "goal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("unit", sa.String(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["success_plan.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "key"),
        if_not_exists=True,
    )
    op.create_index(
        op.f("ix_goal_customer_id"), "goal", ["customer_id"], unique=False, if_not_exists=True
    )
    op.create_index(op.f("ix_goal_plan_id"), "goal", ["plan_id"], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_goal_plan_id"), table_name="goal")
    op.drop_index(op.f("ix_goal_customer_id"), table_name="goal")
    op.drop_table("goal")
    op.drop_index(op.f("ix_timeline_customer_id"), table_name="timeline")
    op.drop_index(op.f("ix_timeline_at"), table_name="timeline")
    op.drop_table("timeline")
    op.drop_index(op.f("ix_task_status"), table_name="task")
    op.drop_index(op.f("ix_task_owner_role"), table_name="task")
    op.drop_index(op.f("ix_task_kind"), table_name="task")
    op.drop_index(op.f("ix_task_due_at"), table_name="task")
    op.drop_index(op.f("ix_task_customer_id"), table_name="task")
    op.drop_index(op.f("ix_task_assignee"), table_name="task")
    op.drop_table("task")
    op.drop_index(op.f("ix_success_plan_source"), table_name="success_plan")
    op.drop_index(op.f("ix_success_plan_customer_id"), table_name="success_plan")
    op.drop_table("success_plan")
    op.drop_index(op.f("ix_signal_observed_at"), table_name="signal")
    op.drop_index(op.f("ix_signal_kind"), table_name="signal")
    op.drop_index(op.f("ix_signal_customer_id"), table_name="signal")
    op.drop_table("signal")
    op.drop_index(op.f("ix_outbox_status"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_customer_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_assessment_customer_id"), table_name="assessment")
    op.drop_index(op.f("ix_assessment_assessed_at"), table_name="assessment")
    op.drop_table("assessment")
    op.drop_index(op.f("ix_customer_term_end"), table_name="customer")
    op.drop_index(op.f("ix_customer_quadrant"), table_name="customer")
    op.drop_index(op.f("ix_customer_phase"), table_name="customer")
    op.drop_index(op.f("ix_customer_owner"), table_name="customer")
    op.drop_index(op.f("ix_customer_external_id"), table_name="customer")
    op.drop_index(op.f("ix_customer_company"), table_name="customer")
    op.drop_index(op.f("ix_customer_at_risk"), table_name="customer")
    op.drop_table("customer")
    op.drop_index(op.f("ix_audit_log_subject"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_action"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_api_token_role"), table_name="api_token")
    op.drop_table("api_token")
