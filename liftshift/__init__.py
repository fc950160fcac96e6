"""liftshift: move a PostgreSQL estate into BigQuery, and prove it."""
