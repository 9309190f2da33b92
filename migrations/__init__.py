"""Alembic revisions of the records' schema; applied by `db.migrate` (see README)."""
