"""The records database: engine and sessions (`db.engine`) and the reads the CLI and
API share (`db.queries`). Writes come from activities and signal ingestion only."""
