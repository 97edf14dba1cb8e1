"""The one place that wires assets, checks, resources and automation together."""

from typing import Any

import dagster as dg

from football_assets import settings
from football_assets.assets import ingestion, reporting, warehouse
from football_assets.automation import AUTOMATION_SCHEDULES, AUTOMATION_SENSORS
from football_assets.checks import ALL_CHECKS
from football_assets.resources.api import (
    FootballDataApi,
    LiveFootballDataApi,
    SnapshotFootballDataApi,
)
from football_assets.resources.io_manager import PostgresIOManager
from football_assets.resources.warehouse import Warehouse


def build_football_api() -> FootballDataApi:
    """Live when FOOTBALL_DATA_API_KEY is set, else the bundled snapshot (offline)."""
    if settings.api_key():
        return LiveFootballDataApi(
            api_key=dg.EnvVar("FOOTBALL_DATA_API_KEY"),
            base_url=settings.api_url(),
            requests_per_minute=settings.requests_per_minute(),
            rate_window_seconds=settings.rate_window_seconds(),
            connect_timeout_seconds=settings.connect_timeout(),
            read_timeout_seconds=settings.read_timeout(),
            max_retry_seconds=settings.max_retry_seconds(),
        )
    return SnapshotFootballDataApi()


def build_warehouse() -> Warehouse:
    """DATABASE_URL (a secret: it may hold a password) when set, else the embedded server."""
    return Warehouse(
        database_url=dg.EnvVar("DATABASE_URL") if settings.database_url() else None,
        schema_name=settings.db_schema(),
        embedded_pgdata=str(settings.embedded_pgdata()),
    )


def build_resources(
    football_api: FootballDataApi | None = None, warehouse_resource: Warehouse | None = None
) -> dict[str, Any]:
    warehouse_resource = warehouse_resource or build_warehouse()
    return {
        "football_api": football_api or build_football_api(),
        "warehouse": warehouse_resource,
        "warehouse_io_manager": PostgresIOManager(warehouse=warehouse_resource),
    }


def build_definitions(
    football_api: FootballDataApi | None = None, warehouse_resource: Warehouse | None = None
) -> dg.Definitions:
    """The project's Definitions; tests pass resources pointing at their own services."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, warehouse, reporting]),
        asset_checks=ALL_CHECKS,
        resources=build_resources(football_api, warehouse_resource),
        sensors=AUTOMATION_SENSORS,
        schedules=AUTOMATION_SCHEDULES,
    )


defs = build_definitions()
