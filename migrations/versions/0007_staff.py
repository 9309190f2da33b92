"""The success team as people: staff, the account's rep, tokens that belong to a person.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:00:00.000000

Existing data is carried over so that nobody is locked out and no book is emptied:
a token whose `person` is an email address makes that person a staff member (with the
role of their newest token) and is linked to them; an account owner given as an email
address becomes a manager. Tokens without such a person keep acting with the role they
were made with until an admin reissues them for a staff member.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index(op.f("ix_staff_role"), "staff", ["role"], unique=False)
    op.create_index(op.f("ix_staff_active"), "staff", ["active"], unique=False)
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("rep", sa.String(), nullable=True))
    op.create_index("ix_customer_rep_id", "customer", ["rep", "id"], unique=False)
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("staff_id", sa.Integer(), nullable=True))
        batch.create_index(op.f("ix_api_token_staff_id"), ["staff_id"], unique=False)
        batch.create_foreign_key("fk_api_token_staff_id_staff", "staff", ["staff_id"], ["id"])
    _carry_over_people()


def _carry_over_people() -> None:
    # Plain SQL, the same on SQLite and PostgreSQL, and printable by `--sql`.
    newest = (
        "(SELECT t.{column} FROM api_token t WHERE LOWER(TRIM(t.person)) = people.email "
        "ORDER BY CASE WHEN t.revoked_at IS NULL THEN 0 ELSE 1 END, t.id DESC LIMIT 1)"
    )
    op.execute(
        "INSERT INTO staff (name, email, role, active, created_at) "
        f"SELECT {newest.format(column='name')}, people.email, "
        f"{newest.format(column='role')}, TRUE, CURRENT_TIMESTAMP "
        "FROM (SELECT DISTINCT LOWER(TRIM(person)) AS email FROM api_token "
        "WHERE person LIKE '%@%') people"
    )
    op.execute(
        "INSERT INTO staff (name, email, role, active, created_at) "
        "SELECT owners.email, owners.email, 'manager', TRUE, CURRENT_TIMESTAMP "
        "FROM (SELECT DISTINCT LOWER(TRIM(owner)) AS email FROM customer "
        "WHERE owner LIKE '%@%') owners "
        "WHERE owners.email NOT IN (SELECT email FROM staff)"
    )
    # Accounts and tasks name people by their (lowercase) staff email.
    op.execute("UPDATE customer SET owner = LOWER(TRIM(owner)) WHERE owner LIKE '%@%'")
    op.execute(
        "UPDATE api_token SET staff_id = (SELECT staff.id FROM staff "
        "WHERE staff.email = LOWER(TRIM(api_token.person))) WHERE person LIKE '%@%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_constraint("fk_api_token_staff_id_staff", type_="foreignkey")
        batch.drop_index(op.f("ix_api_token_staff_id"))
        batch.drop_column("staff_id")
    op.drop_index("ix_customer_rep_id", table_name="customer")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("rep")
    op.drop_index(op.f("ix_staff_active"), table_name="staff")
    op.drop_index(op.f("ix_staff_role"), table_name="staff")
    op.drop_table("staff")
