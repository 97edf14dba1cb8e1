"""The `football_api` resource: the live API (`LiveFootballDataApi`, over `api_client.py`) or the
bundled snapshot (`SnapshotFootballDataApi`: no key, no network), behind one interface."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from football_assets.resources.api_answers import ApiResponse, FootballDataPermanentError
from football_assets.resources.defaults import (
    BUDGET_SCHEMA,
    DEFAULT_API_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUESTS_PER_MINUTE,
)

if TYPE_CHECKING:  # the HTTP client (requests, tenacity) loads when a live API is used
    from football_assets.resources.api_client import FootballDataClient

SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "snapshot"
SNAPSHOT_DATE = "2025-01-31"


class FootballDataApi(dg.ConfigurableResource, ABC):
    """What the ingestion assets need from football-data.org, live or from the snapshot."""

    @property
    @abstractmethod
    def source(self) -> str: ...

    @abstractmethod
    def get(self, endpoint: str) -> ApiResponse: ...

    def fetch_competitions(self) -> ApiResponse:
        return self.get("/competitions")

    def fetch_teams(self, competition_id: str) -> ApiResponse:
        return self.get(f"/competitions/{competition_id}/teams")


class LiveFootballDataApi(FootballDataApi):
    """The real API. The key comes from `dg.EnvVar("FOOTBALL_DATA_API_KEY")` and is sent only
    in the X-Auth-Token header, so it never reaches a URL, a log line or metadata."""

    # repr=False: a resource printed in a traceback or a debugger does not show the key.
    api_key: str = Field(repr=False)
    base_url: str = DEFAULT_API_URL
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    rate_window_seconds: float = 60.0
    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    backoff_seconds: float = 1.0  # first retry after 1-2 s, then doubling (at most 30 s)
    # The request budget every process using this key shares: a per-user folder on this
    # machine (SQLite), or, where the deployment has one, PostgreSQL (shared across hosts).
    budget_state_dir: str | None = None
    budget_database_url: str | None = Field(default=None, repr=False)  # a secret: use EnvVar
    budget_schema: str = BUDGET_SCHEMA

    _client: FootballDataClient | None = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        return "live"

    def _get_client(self) -> FootballDataClient:
        if self._client is None:
            from football_assets.resources.api_client import FootballDataClient
            from football_assets.resources.budget import open_budget

            budget = open_budget(
                base_url=self.base_url,
                api_key=self.api_key,
                limit=self.requests_per_minute,
                window_seconds=self.rate_window_seconds,
                state_dir=Path(self.budget_state_dir) if self.budget_state_dir else None,
                database_url=self.budget_database_url,
                schema=self.budget_schema,
            )
            if budget.notice:  # a corrupt file was moved aside
                dg.get_dagster_logger("football_assets.api").warning(budget.notice)
            self._client = FootballDataClient(
                base_url=self.base_url,
                api_key=self.api_key,
                budget=budget,
                connect_timeout=self.connect_timeout_seconds,
                read_timeout=self.read_timeout_seconds,
                max_retry_seconds=self.max_retry_seconds,
                backoff_seconds=self.backoff_seconds,
            )
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get(self, endpoint: str) -> ApiResponse:
        return self._get_client().get(endpoint)


class SnapshotFootballDataApi(FootballDataApi):
    """Real API responses recorded on 2025-01-31 (free tier), bundled with the package."""

    snapshot_dir: str = str(SNAPSHOT_DIR)
    snapshot_date: str = SNAPSHOT_DATE

    @property
    def source(self) -> str:
        return "snapshot"

    def get(self, endpoint: str) -> ApiResponse:
        if endpoint == "/competitions":
            name = "competitions.json"
        else:
            found = re.fullmatch(r"/competitions/(\d+)/teams", endpoint)
            if not found:
                raise FootballDataPermanentError(f"The snapshot has no answer for GET {endpoint}.")
            name = f"teams_{found.group(1)}.json"
        path = Path(self.snapshot_dir) / name
        if not path.exists():
            raise FootballDataPermanentError(
                f"GET {endpoint}: the snapshot of {self.snapshot_date} has no {name}; "
                "set FOOTBALL_DATA_API_KEY to fetch it live."
            )
        raw = path.read_bytes()
        return ApiResponse(
            endpoint=endpoint,
            url=f"snapshot://{self.snapshot_date}/{name}",
            status=200,
            payload=json.loads(raw),
            size_bytes=len(raw),
            fetched_at=datetime.now(UTC),
            source="snapshot",
            snapshot_date=self.snapshot_date,
        )
