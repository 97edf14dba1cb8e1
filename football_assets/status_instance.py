"""What the Dagster instance recorded of each asset, for `status`: last materialization, its
sources (followed up the lineage Dagster records), partitions and freshness."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from football_assets.assets.ingestion import PARTITIONS, RAW_TEAMS, raw_competitions, raw_teams
from football_assets.assets.reporting import summary_csv
from football_assets.assets.warehouse import warehouse_tables
from football_assets.cli.home import open_instance

ASSETS = (raw_competitions, raw_teams, warehouse_tables, summary_csv)


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
class Recorded:
    """What the instance holds: each asset's status and what summary_csv and the raw assets'
    metadata said."""

    instance: str  # "ok", or why it was not read
    assets: list[AssetStatus] = field(default_factory=list)
    summary: str | None = None  # summary.csv's path
    zero_team_competitions: list[str] | None = None  # as summary_csv's metadata listed them
    last_answer: dict[str, Any] | None = None  # the API's word on the budget, last recorded


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def describe_policy(policy: dg.FreshnessPolicy | None) -> str | None:
    """A time-window policy as people read it; None for no policy."""
    if policy is None:
        return None
    fail = getattr(policy, "fail_window", None)
    if fail is None:  # a cron policy
        return f"due by cron {getattr(policy, 'deadline_cron', '?')}"
    warn = getattr(policy, "warn_window", None)
    parts = [f"warn after {_hours(warn.to_timedelta())}"] if warn else []
    return ", ".join([*parts, f"fail after {_hours(fail.to_timedelta())}"])


def freshness_state(
    policy: dg.FreshnessPolicy | None, materialized_at: float | None, now: float
) -> str:
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


def _meta(record: dg.EventLogRecord) -> dict[str, Any]:
    materialization = record.asset_materialization
    return {
        k: v.value
        for k, v in ((materialization.metadata if materialization else None) or {}).items()
    }


def _source(metadata: Mapping[str, Any]) -> str | None:
    source = metadata.get("source")
    if source == "live":
        return "live API"
    if source == "snapshot":
        date = metadata.get("snapshot_date")
        return f"snapshot {date}" if date else "snapshot"
    return None


class _Reads:
    """The reads status makes of the instance, each record fetched once."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._by_id: dict[int, dg.EventLogRecord | None] = {}

    def latest(self, key: dg.AssetKey) -> dg.EventLogRecord | None:
        records = self.instance.fetch_materializations(key, limit=1).records
        return records[0] if records else None

    def by_storage_id(self, key: dg.AssetKey, storage_id: int) -> dg.EventLogRecord | None:
        if storage_id not in self._by_id:
            found = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, storage_ids=[storage_id]), limit=1
            ).records
            self._by_id[storage_id] = found[0] if found else None
        return self._by_id[storage_id]

    def sources(self, record: dg.EventLogRecord, depth: int = 3) -> set[str]:
        """Where the data of a materialization came from: its own `source` metadata (raw
        answers), else that of the materializations it was built from (its provenance)."""
        own = _source(_meta(record))
        if own or depth == 0:
            return {own} if own else set()
        tags = (record.asset_materialization.tags if record.asset_materialization else None) or {}
        provenance = dg.DataProvenance.from_tags(tags)
        found: set[str] = set()
        for key, storage_id in (provenance.input_storage_ids if provenance else {}).items():
            parent = self.by_storage_id(key, storage_id) if storage_id is not None else None
            if parent is not None:
                found |= self.sources(parent, depth - 1)
        return found

    def last_answer(self) -> dict[str, Any] | None:
        """What the API said about the budget in the latest raw answer recorded."""
        latest = [r for r in (self.latest(raw_competitions.key), self.latest(RAW_TEAMS.key)) if r]
        for record in sorted(latest, key=lambda r: r.timestamp, reverse=True):
            meta = _meta(record)
            if "api_requests_available_minute" in meta:
                return {
                    "at": iso(record.timestamp),
                    "requests_available": meta["api_requests_available_minute"],
                    "reset_seconds": meta.get("api_counter_reset_seconds"),
                }
        return None


def _materialized(
    status: AssetStatus, record: dg.EventLogRecord, reads: _Reads, now: float
) -> None:
    status.last_materialized = iso(record.timestamp)
    status.age_seconds = round(now - record.timestamp, 1)
    status.run_id = record.run_id
    status.source = " + ".join(sorted(reads.sources(record))) or None
    meta = _meta(record)
    if "rows_inserted" in meta:
        status.last_change = {
            what: int(meta.get(f"rows_{what}") or 0) for what in ("inserted", "updated", "deleted")
        }


def read_instance(home: Path, now: float) -> Recorded:
    """Every asset's status from the instance at `home`; policies alone when it does not exist."""
    if not home.is_dir():
        return _statuses(Recorded("none yet (`football-assets refresh` creates it)"), None, now)
    with open_instance(home) as instance:  # set up under its lock
        return _statuses(Recorded("ok"), _Reads(instance), now)


def _statuses(recorded: Recorded, reads: _Reads | None, now: float) -> Recorded:
    specs = [spec for a in ASSETS for spec in a.specs]
    daemon = reads.instance.get_freshness_state_records([s.key for s in specs]) if reads else {}
    for spec in specs:
        record = reads.latest(spec.key) if reads else None
        status = AssetStatus(
            spec.key.to_user_string(),
            freshness=freshness_state(
                spec.freshness_policy, record.timestamp if record else None, now
            ),
            freshness_policy=describe_policy(spec.freshness_policy),
        )
        recorded.assets.append(status)
        if spec.key in daemon:
            status.freshness_recorded = daemon[spec.key].freshness_state.value
        if reads is None:
            continue
        if spec.key == RAW_TEAMS.key:
            registered = reads.instance.get_dynamic_partitions(PARTITIONS)
            done = reads.instance.get_materialized_partitions(spec.key) & set(registered)
            status.partitions = f"{len(done)}/{len(registered)} competitions"
        if record is None:
            continue
        _materialized(status, record, reads, now)
        if spec.key == summary_csv.key:
            meta = _meta(record)
            recorded.summary = str(meta.get("path") or "") or None
            if "zero_team_competitions" in meta:
                listed = str(meta["zero_team_competitions"])
                recorded.zero_team_competitions = [] if listed == "none" else listed.split(", ")
    if reads is not None:
        recorded.last_answer = reads.last_answer()
    return recorded
