"""`football-assets status`: what is in the warehouse, how old it is, and where it came from.

Read-only and quick: no Dagster run, no API request, and the embedded PostgreSQL is never
started (when it is stopped, that is what status says, and the row counts wait for it). It
reads the Dagster instance (latest materializations and their metadata), the warehouse (row
counts, zero-team competitions) when it is reachable, and the request budget's record of what
the API last said.

Freshness: Dagster 1.13 stores a freshness state only when its freshness daemon evaluates one
(`dagster dev` or `dagster-daemon`), as events it appends when the state changes; with no daemon
running, that record is missing or out of date. So status applies the asset's own
`FreshnessPolicy` to its latest materialization, with the rule of Dagster's
`TimeWindowFreshnessPolicyEvaluator` (FAIL at `fail_window` since the last materialization, WARN
at `warn_window`, UNKNOWN when never materialized), and shows the daemon's last record beside it.

Size: one read-only pass over the four places the state lives (the instance, the warehouse, the
request budget, the embedded server), each read a few lines filling the same `Status`; split,
the parts would be plumbing around one screen.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from football_assets.redaction import SecretScrubber, parse_database_url
from football_assets.settings import DEFAULT_DAGSTER_HOME, Settings

if TYPE_CHECKING:
    import dagster as dg

TABLES = ("dim_competitions", "dim_teams", "fact_competitions")
CONNECT_TIMEOUT_SECONDS = 3

ZERO_TEAMS_SQL = """
SELECT c.id, c.name FROM {schema}.dim_competitions c
LEFT JOIN {schema}.fact_competitions f ON f.competition_id = c.id
GROUP BY c.id, c.name HAVING count(f.team_id) = 0 ORDER BY c.id
"""


@dataclass
class AssetStatus:
    asset: str
    last_materialized: str | None = None  # ISO 8601, UTC
    age_seconds: float | None = None
    run_id: str | None = None
    source: str | None = None  # "live API", "snapshot 2025-01-31", or both for a mix
    partitions: str | None = None  # raw_teams: "13 of 13 competitions"
    freshness: str = "NOT_APPLICABLE"  # PASS, WARN, FAIL, UNKNOWN (never built), NOT_APPLICABLE
    freshness_policy: str | None = None  # "warn after 26 h, fail after 50 h"
    freshness_recorded: str | None = None  # what Dagster's freshness daemon last recorded
    # Tables: rows inserted/updated/deleted by the last materialization (the last change).
    last_change: dict[str, int] | None = None


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


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def describe_policy(policy: Any) -> str | None:
    """A time-window policy as people read it; None for no policy."""
    if policy is None:
        return None
    fail = getattr(policy, "fail_window", None)
    if fail is None:  # a cron policy
        return f"due by cron {getattr(policy, 'deadline_cron', '?')}"
    warn = getattr(policy, "warn_window", None)
    parts = [f"warn after {_hours(warn.to_timedelta())}"] if warn else []
    return ", ".join([*parts, f"fail after {_hours(fail.to_timedelta())}"])


def freshness_state(policy: Any, materialized_at: float | None, now: float) -> str:
    """PASS / WARN / FAIL by a time-window policy, as Dagster's evaluator decides it."""
    if policy is None:
        return "NOT_APPLICABLE"
    if materialized_at is None:
        return "UNKNOWN"
    fail = getattr(policy, "fail_window", None)
    if fail is None:
        return "UNKNOWN"  # cron policies are evaluated by Dagster's daemon only
    age = now - materialized_at
    if age >= fail.to_timedelta().total_seconds():
        return "FAIL"
    warn = getattr(policy, "warn_window", None)
    if warn is not None and age >= warn.to_timedelta().total_seconds():
        return "WARN"
    return "PASS"


def _asset_specs() -> list[Any]:
    """Every asset's spec, in graph order, from the asset definitions themselves."""
    from football_assets.assets.ingestion import raw_competitions, raw_teams
    from football_assets.assets.reporting import summary_csv
    from football_assets.assets.warehouse import warehouse_tables

    return [
        spec
        for a in (raw_competitions, raw_teams, warehouse_tables, summary_csv)
        for spec in a.specs
    ]


def _source(metadata: dict[str, Any]) -> str | None:
    source = metadata.get("source")
    if source == "live":
        return "live API"
    if source == "snapshot":
        date = metadata.get("snapshot_date")
        return f"snapshot {date}" if date else "snapshot"
    return None


def _meta(materialization: Any) -> dict[str, Any]:
    return {k: v.value for k, v in (materialization.metadata or {}).items()}


class _Instance:
    """The reads status makes of the Dagster instance, each record fetched once."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._by_id: dict[int, Any] = {}

    def latest(self, key: dg.AssetKey) -> Any:
        records = self.instance.fetch_materializations(key, limit=1).records
        return records[0] if records else None

    def by_storage_id(self, key: dg.AssetKey, storage_id: int) -> Any:
        import dagster as dg

        if storage_id not in self._by_id:
            found = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, storage_ids=[storage_id]), limit=1
            ).records
            self._by_id[storage_id] = found[0] if found else None
        return self._by_id[storage_id]

    def sources(self, record: Any, depth: int = 3) -> set[str]:
        """Where the data of a materialization came from: its own `source` metadata (raw
        answers), else that of the materializations it was built from (Dagster's input event
        pointer tags), followed up the lineage."""
        import dagster as dg
        from dagster._core.definitions.data_version import INPUT_EVENT_POINTER_TAG_PREFIX

        materialization = record.asset_materialization
        own = _source(_meta(materialization))
        if own or depth == 0:
            return {own} if own else set()
        found: set[str] = set()
        for tag, value in (materialization.tags or {}).items():
            if tag.startswith(INPUT_EVENT_POINTER_TAG_PREFIX) and value.isdigit():
                key = dg.AssetKey.from_user_string(tag[len(INPUT_EVENT_POINTER_TAG_PREFIX) + 1 :])
                parent = self.by_storage_id(key, int(value))
                if parent is not None:
                    found |= self.sources(parent, depth - 1)
        return found


def _read_instance(home: Path, result: Status, now: float) -> None:

    from football_assets.assets.ingestion import PARTITIONS, RAW_TEAMS

    specs = _asset_specs()
    with contextlib.ExitStack() as stack:
        instance, reads = None, None
        recorded: Mapping[Any, Any] = {}
        if home.is_dir():
            from football_assets.cli.home import open_instance  # set up under its lock

            instance = stack.enter_context(open_instance(home))
            reads = _Instance(instance)
            recorded = instance.get_freshness_state_records([s.key for s in specs])
        for spec in specs:
            policy = getattr(spec, "freshness_policy", None)
            record = reads.latest(spec.key) if reads else None
            status = AssetStatus(
                spec.key.to_user_string(),
                freshness=freshness_state(policy, record.timestamp if record else None, now),
                freshness_policy=describe_policy(policy),
            )
            result.assets.append(status)
            if spec.key in recorded:
                status.freshness_recorded = recorded[spec.key].freshness_state.value
            if instance is None or reads is None:
                continue
            if spec.key == RAW_TEAMS.key:
                registered = instance.get_dynamic_partitions(PARTITIONS)
                done = instance.get_materialized_partitions(spec.key) & set(registered)
                status.partitions = f"{len(done)}/{len(registered)} competitions"
            if record is None:
                continue
            status.last_materialized = _iso(record.timestamp)
            status.age_seconds = round(now - record.timestamp, 1)
            status.run_id = record.run_id
            status.source = " + ".join(sorted(reads.sources(record))) or None
            meta = _meta(record.asset_materialization)
            if "rows_inserted" in meta:
                status.last_change = {
                    what: int(meta.get(f"rows_{what}") or 0)
                    for what in ("inserted", "updated", "deleted")
                }
            if status.asset == "summary_csv":
                result.summary = str(meta.get("path") or "") or None
                if result.zero_team_competitions is None and "zero_team_competitions" in meta:
                    listed = str(meta["zero_team_competitions"])
                    result.zero_team_competitions = [] if listed == "none" else listed.split(", ")
                    result.zero_teams_from = "summary_csv metadata"
        if reads is None:
            result.instance = "none yet (`football-assets refresh` creates it)"
        else:
            result.instance = "ok"
            result.api["last_answer"] = _last_answer(reads)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _first_line(exc: BaseException, config: Settings) -> str:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SecretScrubber(config.secrets()).scrub(reason)


def _last_answer(reads: _Instance) -> dict[str, Any] | None:
    """What the API said about the budget in the latest raw answer the instance recorded."""
    from football_assets.assets.ingestion import RAW_TEAMS, raw_competitions

    latest = [r for r in (reads.latest(raw_competitions.key), reads.latest(RAW_TEAMS.key)) if r]
    for record in sorted(latest, key=lambda r: r.timestamp, reverse=True):
        meta = _meta(record.asset_materialization)
        if "api_requests_available_minute" in meta:
            return {
                "at": _iso(record.timestamp),
                "requests_available": meta["api_requests_available_minute"],
                "reset_seconds": meta.get("api_counter_reset_seconds"),
            }
    return None


def _connect(config: Settings, result: Status) -> Any:
    """A psycopg connection to the warehouse, or None (embedded server stopped, unreachable)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from football_assets.resources.postgres_server import embedded_status

    if config.database_url:
        url = parse_database_url(config.database_url)
    else:
        embedded = embedded_status(config.embedded_pgdata)
        result.embedded_pid = embedded.pid
        if not embedded.running or embedded.url is None:
            result.database = "stopped (status never starts it; `football-assets refresh` does)"
            return None
        url = parse_database_url(embedded.url)
    params = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
        **{k: v for k, v in url.query.items() if isinstance(v, str)},
    }
    conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    try:
        conn = psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    except psycopg.Error as exc:
        result.database = f"unreachable: {_first_line(exc, config)}"
        return None
    result.database = "reachable" if config.database_url else "running"
    return conn


def _read_warehouse(conn: Any, schema: str, result: Status) -> None:
    from psycopg import sql

    with conn:
        found = {
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        }
        rows: dict[str, int | None] = {}
        for name in TABLES:
            if name in found:
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
                rows[name] = int(conn.execute(query).fetchone()[0])
            else:
                rows[name] = None  # not created yet
        result.rows = rows
        if {"dim_competitions", "fact_competitions"} <= found:
            query = sql.SQL(ZERO_TEAMS_SQL.replace("{schema}", "{}")).format(
                sql.Identifier(schema), sql.Identifier(schema)
            )
            result.zero_team_competitions = [
                f"{name} ({cid})" for cid, name in conn.execute(query).fetchall()
            ]
            result.zero_teams_from = "warehouse"


def _budget(config: Settings, reachable: bool) -> dict[str, Any]:
    """The API budget as the server last reported it (the request budget keeps its word), read
    without writing: no table created, no lock or write transaction, no limiter thread."""
    if not config.live or config.api_key is None:
        return {"source": "snapshot", "budget": "none: the offline snapshot makes no requests"}
    from football_assets.resources.budget_store import (
        BudgetStoreError,
        budget_file,
        budget_id,
        read_postgres_word,
        read_sqlite_word,
        store_problem,
    )
    from football_assets.resources.defaults import BUDGET_SCHEMA

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
    said = {"requests_available": available, "resets_at": _iso(reset_at)}
    return {**out, "server_said": said, "budget": f"{available} requests left until {clock} UTC"}


def collect(config: Settings, now: float | None = None) -> Status:
    """Everything `status` shows, read without changing anything."""
    from football_assets.resources.warehouse import Warehouse

    started = time.monotonic()
    now = time.time() if now is None else now
    home = config.dagster_home or Path(DEFAULT_DAGSTER_HOME).absolute()
    where = Warehouse(
        database_url=config.database_url,
        schema_name=config.db_schema,
        embedded_pgdata=str(config.embedded_pgdata),
    ).describe()
    result = Status(warehouse=where, schema=config.db_schema, dagster_home=str(home))
    conn = _connect(config, result)
    if conn is not None:
        try:
            _read_warehouse(conn, config.db_schema, result)
        except Exception as exc:  # a half-built schema, a revoked grant: say so, go on
            result.database += f" (could not read: {_first_line(exc, config)})"
    result.api = _budget(config, reachable=conn is not None)
    _read_instance(home, result, now)
    result.seconds = round(time.monotonic() - started, 2)
    return result
