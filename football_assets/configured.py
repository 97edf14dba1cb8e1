"""The settings turned into resources, in this one place: `definitions`, `status` and the CLI
build theirs here."""

from __future__ import annotations

import dagster as dg

from football_assets import settings
from football_assets.resources.api import (
    FootballDataApi,
    LiveFootballDataApi,
    SnapshotFootballDataApi,
)
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets.settings import Settings


def _database_url(config: Settings, by_name: bool) -> str | None:
    # A run's resources name the secret's variable (run storage and the UI show the name only);
    # a command's own reads, made in this process, take the value.
    if not config.database_url:
        return None
    return dg.EnvVar("DATABASE_URL") if by_name else config.database_url


def build_football_api(config: Settings | None = None) -> FootballDataApi:
    """Live when FOOTBALL_DATA_API_KEY is set, else the bundled snapshot (offline)."""
    config = config or settings.load()
    if not config.live:
        return SnapshotFootballDataApi()
    return LiveFootballDataApi(
        api_key=dg.EnvVar("FOOTBALL_DATA_API_KEY"),
        base_url=config.api_url,
        requests_per_minute=config.requests_per_minute,
        rate_window_seconds=config.rate_window_seconds,
        connect_timeout_seconds=config.connect_timeout,
        read_timeout_seconds=config.read_timeout,
        max_retry_seconds=config.max_retry_seconds,
        budget_state_dir=str(config.state_dir),
        # Where the warehouse is a PostgreSQL of the deployment's, the budget lives there too,
        # shared by run tasks on any host; the embedded default keeps it in the state folder.
        budget_database_url=_database_url(config, by_name=True),
    )


def prepare_budget(config: Settings) -> str | None:
    """The SQLite budget checked before anything starts (see `prepare_sqlite_budget`); None when
    the snapshot or a PostgreSQL budget is used, or nothing needs saying."""
    if not config.api_key or config.database_url:
        return None
    # Here, not above: the HTTP client's stack loads only where a live API is used.
    from football_assets.resources.budget import prepare_sqlite_budget

    return prepare_sqlite_budget(
        state_dir=config.state_dir,
        base_url=config.api_url,
        api_key=config.api_key,
        limit=config.requests_per_minute,
        window_seconds=config.rate_window_seconds,
    )


def build_warehouse(
    config: Settings | None = None, *, for_runs: bool = True, read_only: bool = False
) -> Warehouse:
    """DATABASE_URL when set, else the embedded server; `for_runs=False` for a command's own
    reads, `read_only` for `status` (see `Warehouse.read_only`)."""
    config = config or settings.load()
    return Warehouse(
        database_url=_database_url(config, by_name=for_runs),
        schema_name=config.db_schema,
        embedded_pgdata=str(config.embedded_pgdata),
        read_only=read_only,
    )


def build_output(config: Settings | None = None) -> OutputLocation:
    config = config or settings.load()
    return OutputLocation(location=config.output_location)
