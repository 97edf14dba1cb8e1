"""The checks the raw steps run in their own steps (a new field, a read field gone, zero teams, a
value PostgreSQL cannot hold) and the warehouse step's drift guard; they fire on news only."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from football_assets import drift
from football_assets.competition_keys import key_names
from football_assets.resources.raw_records import RawRecord
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_sql import Keys

Log = logging.Logger | dg.DagsterLogManager
RAW_COMPETITIONS_KEY = dg.AssetKey("raw_competitions")
RAW_TEAMS_KEY = dg.AssetKey("raw_teams")

COMPETITIONS_HAVE_TEAMS = dg.AssetCheckSpec(
    "competitions_have_teams",
    asset=RAW_TEAMS_KEY,
    description="WARN when a competition that listed teams in the previous refresh lists none; "
    "competitions without teams before (between seasons) pass, named in the metadata.",
)
VALUES_FIT_POSTGRES = dg.AssetCheckSpec(
    "raw_teams_values_fit_postgres",
    asset=RAW_TEAMS_KEY,
    description="WARN when an answer held characters PostgreSQL cannot store (NUL, lone "
    "surrogates): the tables got them as U+FFFD, raw_responses keeps the answer verbatim.",
)


def _drift_specs(key: dg.AssetKey, prefix: str) -> tuple[dg.AssetCheckSpec, dg.AssetCheckSpec]:
    return (
        dg.AssetCheckSpec(
            f"{prefix}_new_fields",
            asset=key,
            description="WARN naming each JSON path an answer holds that neither the recorded "
            "snapshot, the payload models nor the previous answer had (kept verbatim, unread).",
        ),
        dg.AssetCheckSpec(
            f"{prefix}_read_fields_present",
            asset=key,
            blocking=True,
            description="Fails (blocking) when an answer lacks a JSON path a table column "
            "reads; the warehouse then keeps its previous rows.",
        ),
    )


COMPETITIONS_NEW_FIELDS, COMPETITIONS_READ_FIELDS = _drift_specs(
    RAW_COMPETITIONS_KEY, "raw_competitions"
)
TEAMS_NEW_FIELDS, TEAMS_READ_FIELDS = _drift_specs(RAW_TEAMS_KEY, "raw_teams")


def listed_competitions(warehouse: Warehouse) -> tuple[dict[str, int], dict[str, str]]:
    """({partition key: competition id}, {partition key: name}) of the latest stored
    competition list (both empty when none)."""
    latest = warehouse.latest_raw("raw_competitions", [""])
    return key_names(latest[""]) if latest else ({}, {})


def named(key: str, names: Mapping[str, str]) -> str:
    return f"{names[key]} ({key})" if key in names else f"competition {key}"


def check_competitions_have_teams(
    warehouse: Warehouse, emptied: Mapping[str, int]
) -> dg.AssetCheckResult:
    """`emptied`: {competition: teams listed before} of this run's competitions that list none
    now and listed some in their previous answer: the news."""
    ids, listed = listed_competitions(warehouse)
    rows = warehouse.query_latest(
        "raw_teams",
        ids,
        "SELECT partition_key FROM latest WHERE jsonb_array_length(payload -> 'teams') = 0",
    )
    empty = sorted((r["partition_key"] for r in rows), key=lambda k: (ids.get(k, 0), k))
    names = [named(key, listed) for key in empty]
    news = [
        f"{named(key, listed)}, {emptied[key]} before"
        for key in sorted(emptied, key=lambda k: (ids.get(k, 0), k))
    ]
    description = f"Zero teams: {', '.join(names)}" if names else "Every competition has teams."
    if news:
        description = "Listed teams in the previous refresh, none now: " + "; ".join(news)
    elif names:
        description += ". Not news: none had teams in the previous refresh (between seasons)."
    return dg.AssetCheckResult(
        check_name=COMPETITIONS_HAVE_TEAMS.name,
        passed=not news,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "zero_team_competitions": ", ".join(names) or "none",
            "count": len(names),
            "lost_all_teams": "; ".join(news) or "none",
        },
    )


def check_values_fit_postgres(warehouse: Warehouse) -> dg.AssetCheckResult:
    # One row per replaced field, with the id of the team it belongs to ("teams.3.name" alone
    # would send a reader counting).
    ids, listed = listed_competitions(warehouse)
    rows = warehouse.query_latest(
        "raw_teams",
        ids,
        "SELECT partition_key, competition_id, field, "
        "payload #>> ((string_to_array(field, '.'))[1:2] || '{id}'::text[]) AS team "
        "FROM latest, unnest(sanitized_fields) AS field",
    )
    found = [
        f"{named(r['partition_key'], listed)}: " + where_in_teams(r["field"], r["team"])
        for r in sorted(rows, key=lambda r: (r["competition_id"], r["field"]))
    ]
    return dg.AssetCheckResult(
        check_name=VALUES_FIT_POSTGRES.name,
        passed=not found,
        severity=dg.AssetCheckSeverity.WARN,
        description=("Replaced characters in " + "; ".join(found))
        if found
        else "Every value fits PostgreSQL as sent.",
        metadata={
            "sanitized": "; ".join(found) or "none",
            "competitions": len({r["partition_key"] for r in rows}),
        },
    )


def where_in_teams(path: str, team: Any) -> str:
    """`team 5, field 'name'` for `teams.3.name` of team 5; the bare path for anything else."""
    parts = path.split(".")
    if team is not None and len(parts) >= 3 and parts[0] == "teams" and parts[1].isdigit():
        return f"team {team}, field '{'.'.join(parts[2:])}'"
    return f"field '{path}'"


def new_fields_result(
    spec: dg.AssetCheckSpec, news: Mapping[str, Sequence[str]]
) -> dg.AssetCheckResult:
    """`news`: {where (a competition, or the list): new paths}."""
    found = "; ".join(f"{where}: {', '.join(paths)}" for where, paths in news.items())
    return dg.AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=not news,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"New in the API's answers (kept verbatim, no table reads them): {found}"
        if news
        else "No field the project has not seen before.",
        metadata={
            "new_fields": found or "none",
            "paths": len({p for paths in news.values() for p in paths}),
        },
    )


def read_fields_result(
    spec: dg.AssetCheckSpec, missing: Mapping[str, Sequence[drift.MissingPath]]
) -> dg.AssetCheckResult:
    """`missing`: {where: read paths its answer lacks}."""
    found = "; ".join(f"{where}: {', '.join(map(str, paths))}" for where, paths in missing.items())
    return dg.AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"Gone from the API's answers, read by the tables: {found}"
        if missing
        else "Every field the tables read is present.",
        metadata={
            "missing_fields": found or "none",
            "columns": ", ".join(sorted({p.column for ps in missing.values() for p in ps}))
            or "none",
        },
    )


@dataclass
class AnswerWatch:
    """What one run's answers of `asset` say that is news, gathered as they arrive."""

    asset: str
    endpoint: str
    unknown: dict[str, list[str]] = field(default_factory=dict)  # paths the project never saw
    missing: dict[str, list[drift.MissingPath]] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)  # competitions listing no teams
    news: dict[str, list[str]] = field(default_factory=dict)  # unknown, and not in the previous
    emptied: dict[str, int] = field(default_factory=dict)  # no teams now, this many before
    # {partition key: competition id} of competitions' answers: their previous answer is the
    # competition's, whichever key it was stored under. Empty for the competition list.
    ids: dict[str, int] = field(default_factory=dict)

    def _keys(self, keys: Sequence[str]) -> Keys:
        return {k: self.ids[k] for k in keys} if self.ids else list(keys)

    def see(self, key: str, payload: Any) -> None:
        found = drift.shape(payload)
        if unknown := drift.new_paths(found, self.endpoint):
            self.unknown[key] = unknown
        if missing := drift.missing_read_paths(found, self.endpoint):
            self.missing[key] = missing
        if self.endpoint == drift.TEAMS and payload.get("teams") == []:
            self.empty.append(key)

    def compare_with_previous(self, warehouse: Warehouse) -> None:
        """Run before this run's answers are stored: each partition's latest stored answer is
        then its previous one. Reads only partitions that hold something unknown or no teams."""
        if self.unknown:
            previous = warehouse.latest_raw(self.asset, self._keys(list(self.unknown)))
            for key, paths in self.unknown.items():
                seen = drift.shape(previous[key]) if key in previous else {}
                if news := [p for p in paths if p not in seen]:
                    self.news[key] = news
        if self.empty:
            rows = warehouse.query_latest(
                self.asset,
                self._keys(self.empty),
                "SELECT partition_key, jsonb_array_length(payload -> 'teams') AS n FROM latest "
                "WHERE jsonb_typeof(payload -> 'teams') = 'array'",
            )
            self.emptied = {r["partition_key"]: r["n"] for r in rows if r["n"]}


def refuse_drifted_answers(
    warehouse: Warehouse, competitions: Any, team_partitions: Mapping[str, int]
) -> None:
    """The warehouse step's guard: raise (one line) when a stored answer it would load lacks a
    field a column reads. The raw step's blocking check fails in its own run; this keeps the
    tables as they are in every later run too (refresh, materialize, automation)."""
    missing: dict[str, list[drift.MissingPath]] = {}
    lacks = drift.missing_read_paths(drift.shape(competitions), drift.COMPETITIONS)
    if lacks:
        missing["GET /competitions"] = lacks
    names = key_names(competitions)[1]
    rows = warehouse.query_latest("raw_teams", dict(team_partitions), drift.teams_facts_sql())
    for row in sorted(rows, key=lambda r: team_partitions.get(r["partition_key"], 0)):
        lacks = drift.missing_in_facts(row)
        if lacks:
            missing[named(row["partition_key"], names)] = lacks
    if missing:
        raise dg.Failure(
            "refusing to load the tables: " + drift.describe_missing(missing),
            allow_retries=False,
        )


def warn_new_fields(log: Log, where: str, paths: list[str]) -> None:
    log.warning(
        "%s: the API sent fields this project has not seen before: %s (kept verbatim in "
        "raw_responses; no table reads them).",
        where,
        ", ".join(paths),
    )


def warn_sanitized(log: Log, key: str, record: RawRecord, payload: dict[str, Any]) -> None:
    for path in record.sanitized:
        parts = path.split(".")
        team = None
        if len(parts) >= 2 and parts[0] == "teams" and parts[1].isdigit():
            try:
                team = payload["teams"][int(parts[1])].get("id")
            except (IndexError, AttributeError, TypeError):
                team = None
        log.warning(
            "Competition %s: %s holds characters PostgreSQL cannot store (NUL or a lone "
            "surrogate); the tables get them replaced by U+FFFD, raw_responses keeps the answer "
            "verbatim (payload_exact).",
            key,
            where_in_teams(path, team),
        )


def log_news(log: Log, watch: AnswerWatch, names: dict[str, str]) -> None:
    for key, paths in watch.news.items():
        warn_new_fields(log, f"Competition {named(key, names)}", paths)
    for key in watch.empty:
        if key in watch.emptied:
            log.warning(
                "Competition %s lists no teams now; its previous answer listed %d.",
                named(key, names),
                watch.emptied[key],
            )
        else:
            log.info(
                "Competition %s lists no teams, as before (between seasons?).", named(key, names)
            )
