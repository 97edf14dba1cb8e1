"""The one place that wires assets, checks, resources and automation together."""


import warnings

import dagster as dg

from football_assets import settings
from football_assets.assets import ingestion, reporting, warehouse
from football_assets.checks import ALL_CHECKS
from football_assets.resources.api import (
    FootballDataApi,
    LiveFootballDataApi,
    SnapshotFootballDataApi,
)
from football_assets.resources.io_manager import PostgresIOManager
from football_assets.resources.warehouse import Warehouse

# We use data versions and single-run backfills on purpose; their beta notices are noise here.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def build_football_api() -> FootballDataApi:
    """Live when FOOTBALL_DATA_API_KEY is set, else the bundled snapshot (offline)."""
    if settings.api_key():
        return LiveFootballDataApi(
            api_key=dg.EnvVar("FOOTBALL_DATA_API_KEY"),
            base_url=settings.api_url(),
            requests_per_minute=settings.requests_per_minute(),
            rate_window_seconds=settings.rate_window_seconds(),
        )
    return SnapshotFootballDataApi()


def build_warehouse() -> Warehouse:
    """DATABASE_URL (a secret: it may hold a password) when set, else the embedded server."""
    return Warehouse(
        database_url=dg.EnvVar("DATABASE_URL") if settings.database_url() else None,
        schema_name=settings.db_schema(),
        embedded_pgdata=str(settings.embedded_pgdata()),
    )


def build_resources() -> dict[str, object]:
    warehouse_resource = build_warehouse()
    return {
        "football_api": build_football_api(),
        "warehouse": warehouse_resource,
        "warehouse_io_manager": PostgresIOManager(warehouse=warehouse_resource),
    }


all_assets = dg.load_assets_from_modules([ingestion, warehouse, reporting])

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=ALL_CHECKS,
    resources=build_resources(),
)
