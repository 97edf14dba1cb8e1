"""football-data.org ingestion as Dagster software-defined assets, warehoused in PostgreSQL."""

import warnings

# Single-run backfills and data versions are beta in Dagster 1.13 and we use them on purpose;
# their notices would bury the run's own warnings (such as running on the offline snapshot).
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")
