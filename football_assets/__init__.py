"""football-data.org ingestion as Dagster software-defined assets, warehoused in PostgreSQL."""
