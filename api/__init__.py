"""The HTTP API and the web pages: thin routes over `lifecycles` (writes go through the
workflows) and `db.queries` (reads from the records)."""
