"""`football-assets status`: what is in the warehouse, how old it is, where it came from; read
only (no run, no request, the embedded PostgreSQL never started)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from football_assets.assets.reporting import summary_rows, zero_team_competitions
from football_assets.configured import build_warehouse
from football_assets.redaction import SecretScrubber
from football_assets.resources.budget_store import (
    BudgetStoreError,
    budget_file,
    budget_id,
    read_postgres_word,
    read_sqlite_word,
    store_problem,
)
from football_assets.resources.defaults import BUDGET_SCHEMA
from football_assets.resources.warehouse import EmbeddedStopped, Warehouse
from football_assets.resources.warehouse_errors import DatabaseUnavailable
from football_assets.settings import DEFAULT_DAGSTER_HOME, Settings
from football_assets.status_instance import AssetStatus, iso, read_instance

TABLES = ("dim_competitions", "dim_teams", "fact_competitions")
STOPPED = "stopped (status never starts it; `football-assets refresh` does)"


@dataclass
class Status:
    warehouse: str  # where, password hidden
    schema: str
    dagster_home: str
    database: str = ""  # "running", "reachable", "stopped (...)", "unreachable: why"
    embedded_pid: int | None = None
    rows: dict[str, int | None] | None = None  # None: the database was not read
    zero_team_competitions: list[str] | None = None
    zero_teams_from: str | None = None  # "warehouse" or "summary_csv metadata"
    instance: str = ""  # "ok", or why it was not read
    assets: list[AssetStatus] = field(default_factory=list)
    api: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None
    seconds: float = 0.0  # how long status took

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _first_line(exc: BaseException, config: Settings) -> str:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SecretScrubber(config.secrets()).scrub(reason)


def _read_warehouse(warehouse: Warehouse, config: Settings, result: Status) -> bool:
    """Rows and zero-team competitions, as the warehouse holds them; whether it was reached."""
    embedded = warehouse.embedded()
    result.embedded_pid = embedded.pid if embedded else None
    try:
        found = warehouse.present_tables()
    except EmbeddedStopped:
        result.database = STOPPED
        return False
    except DatabaseUnavailable as exc:
        result.database = f"unreachable: {SecretScrubber(config.secrets()).scrub(exc.detail)}"
        return False
    result.database = "running" if embedded else "reachable"
    try:
        result.rows = {
            name: warehouse.count_rows(name) if name in found else None  # None: not created yet
            for name in TABLES
        }
        if {"dim_competitions", "fact_competitions"} <= found:
            result.zero_team_competitions = zero_team_competitions(summary_rows(warehouse))
            result.zero_teams_from = "warehouse"
    except Exception as exc:  # a half-built schema, a revoked grant: say so, go on
        result.database += f" (could not read: {_first_line(exc, config)})"
    return True


def _budget(config: Settings, reachable: bool) -> dict[str, Any]:
    """The API budget as the server last reported it (the request budget keeps its word), read
    without writing: no table created, no lock or write transaction, no limiter thread."""
    if not config.live or config.api_key is None:
        return {"source": "snapshot", "budget": "none: the offline snapshot makes no requests"}
    out: dict[str, Any] = {
        "source": "live",
        "url": config.api_url,
        "configured": f"{config.requests_per_minute} requests per {config.rate_window_seconds:g} s",
        "server_said": None,
    }
    if config.database_url and not reachable:
        return {**out, "budget": "unknown: the database that keeps it is unreachable"}
    api = budget_id(config.api_url, config.api_key)
    path = budget_file(config.state_dir, config.api_url, config.api_key)
    try:
        if config.database_url:
            word = read_postgres_word(config.database_url, BUDGET_SCHEMA, api)
        elif not path.exists():
            return {**out, "budget": "no request recorded yet"}
        else:
            word = read_sqlite_word(path, api)
            if problem := store_problem(path):  # readable, but the next refresh would stop
                out["problem"] = problem
    except BudgetStoreError as exc:  # one line naming the file and what to do
        return {**out, "budget": f"unknown: {exc}", "problem": str(exc)}
    except Exception as exc:  # the database refused the read: say so, go on
        line = f"the request budget could not be read ({_first_line(exc, config)})"
        return {**out, "budget": f"unknown: {line}", "problem": line}
    if word is None or time.time() >= word[1]:
        return {**out, "budget": "full: the server's counter has reset since it last answered"}
    available, reset_at = word
    clock = datetime.fromtimestamp(reset_at, UTC).strftime("%H:%M:%S")
    said = {"requests_available": available, "resets_at": iso(reset_at)}
    return {**out, "server_said": said, "budget": f"{available} requests left until {clock} UTC"}


def collect(config: Settings, now: float | None = None) -> Status:
    """Everything `status` shows, read without changing anything."""
    started = time.monotonic()
    now = time.time() if now is None else now
    home = config.dagster_home or Path(DEFAULT_DAGSTER_HOME).absolute()
    warehouse = build_warehouse(config, for_runs=False, read_only=True)
    result = Status(warehouse=warehouse.describe(), schema=config.db_schema, dagster_home=str(home))
    try:
        reachable = _read_warehouse(warehouse, config, result)
    finally:
        warehouse.dispose()
    result.api = _budget(config, reachable=reachable)
    recorded = read_instance(home, now)
    result.instance = recorded.instance
    result.assets = recorded.assets
    result.summary = recorded.summary
    if result.zero_team_competitions is None and recorded.zero_team_competitions is not None:
        result.zero_team_competitions = recorded.zero_team_competitions
        result.zero_teams_from = "summary_csv metadata"
    if recorded.instance == "ok":
        result.api["last_answer"] = recorded.last_answer
    result.seconds = round(time.monotonic() - started, 2)
    return result
