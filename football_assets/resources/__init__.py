"""One resource per external system: the football-data.org API and the PostgreSQL warehouse."""

from football_assets.resources.api import (
    ApiResponse,
    FootballDataApi,
    FootballDataError,
    LiveFootballDataApi,
    SnapshotFootballDataApi,
)
from football_assets.resources.io_manager import PostgresIOManager
from football_assets.resources.warehouse import Warehouse, WarehouseError

__all__ = [
    "ApiResponse",
    "FootballDataApi",
    "FootballDataError",
    "LiveFootballDataApi",
    "PostgresIOManager",
    "SnapshotFootballDataApi",
    "Warehouse",
    "WarehouseError",
]
