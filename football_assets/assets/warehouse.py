"""Warehouse: `dim_competitions`, `dim_teams`, `fact_competitions` and the history tables, built by
one step in one transaction; only tables whose rows changed are written and materialized."""

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from football_assets.assets.change_sets import change_metadata
from football_assets.assets.history import HISTORY_CODE_VERSION, HISTORY_SPECS
from football_assets.assets.ingestion import RAW_TEAMS, raw_competitions
from football_assets.assets.ingestion_checks import refuse_drifted_answers
from football_assets.assets.table_specs import table_spec
from football_assets.competition_keys import competition_keys
from football_assets.payloads import PayloadError, parse_competitions
from football_assets.policies import (
    DATABASE_RETRY,
)
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_errors import DatabaseUnavailable
from football_assets.resources.warehouse_schema import column_schema
from football_assets.resources.warehouse_sql import RawPartitions, RowsFromRaw

# Dagster 1.13 skips a step when ANY of its inputs' optional outputs was not produced (only
# fan-in inputs wait for all), and the automation sensor does not ask again for an asset its
# dependency's run already targeted. summary_csv reads these two: when one changed and the
# report runs in the same run, the other is materialized too (same rows, same data version,
# so nothing downstream sees a change) rather than leave the report skipped and stale.
READ_TOGETHER = ("dim_competitions", "fact_competitions")
REPORT = dg.AssetKey("summary_csv")
# Bump when the extraction below changes what a table holds (a test pins its fingerprint).
CODE_VERSION = "3"

# ---- extraction: where each column comes from ------------------------------------------------
# dim_teams' columns as JSON paths into each listed team. The columns themselves (types, keys)
# are declared once, in resources/warehouse_schema.py; this is the only other place.
TEAM_FIELDS: Mapping[str, tuple[str, ...]] = {
    "id": ("id",),
    "name": ("name",),
    "short_name": ("shortName",),
    "tla": ("tla",),
    "crest": ("crest",),
    "address": ("address",),
    "website": ("website",),
    "founded": ("founded",),
    "club_colors": ("clubColors",),
    "venue": ("venue",),
    "area_id": ("area", "id"),
    "area_name": ("area", "name"),
    "area_code": ("area", "code"),
    "last_updated": ("lastUpdated",),
}
# How SQL reads a JSON value for each column type. Ids may arrive as 101 or 101.0 (JSON has one
# number type); the payload check on arrival let through only whole numbers in range.
_CASTS = {"integer": "::numeric::integer", "timestamp with time zone": "::timestamptz"}

_APPEARANCES = """
FROM latest
CROSS JOIN LATERAL jsonb_array_elements(latest.payload -> 'teams') WITH ORDINALITY AS a(team, n)
"""
# Among duplicate teams the latest fetched answer wins, then the last listed: the rule
# dim_teams_history follows in time, so its current versions equal dim_teams. A row value,
# not a window: ordering first would sort every team's JSON.
_ORDER = "ROW(latest.fetched_at, latest.id, a.n) AS _ord"


def _json_text(path: tuple[str, ...]) -> str:
    return "a.team #>> '{" + ",".join(path) + "}'"


def team_columns(table: sa.Table) -> list[str]:
    """dim_teams' columns as `expression AS name` over `a.team`, one listed team's JSON."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    column_types = {c.name: c.type.compile(dialect=dialect).lower() for c in table.columns}
    return [
        f"({_json_text(path)}){_CASTS.get(column_types[name], '')} AS {name}"
        for name, path in TEAM_FIELDS.items()
    ]


def team_rows_sql(table: sa.Table) -> str:
    """SELECT dim_teams' columns (and `_ord`) from `latest(partition_key, payload, fetched_at,
    id)`."""
    return "SELECT " + ",\n       ".join([*team_columns(table), _ORDER]) + _APPEARANCES


# The competition is the answer's (`competition.id`), whichever key it was stored under.
MEMBERSHIP_ROWS_SQL = f"""
SELECT latest.competition_id,
       ({_json_text(("id",))})::numeric::integer AS team_id,
       {_ORDER}
{_APPEARANCES}"""


def competition_rows(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c in parse_competitions(payload).competitions:
        area, season = c.area, c.currentSeason
        rows.append(
            {
                "id": c.id,
                "name": c.name,
                "code": c.code,
                "type": c.type,
                "plan": c.plan,
                "area_id": area.id if area else None,
                "area_name": area.name if area else None,
                "area_code": area.code if area else None,
                "emblem": c.emblem,
                "current_season_start": season.startDate if season else None,
                "current_season_end": season.endDate if season else None,
                "last_updated": c.lastUpdated,
            }
        )
    return rows


# ---- versions ----------------------------------------------------------------------------------


def _version(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_version(warehouse: Warehouse) -> str | None:
    """What a build now would read: this code and the SHA-256 of each stored answer it uses;
    None while the competition list was never stored. Recorded in `table_versions` by each
    build, so `refresh` can tell a build would change nothing without running it."""
    latest = warehouse.latest_raw("raw_competitions", [""])
    if "" not in latest:
        return None
    competitions_sha = warehouse.latest_raw_sha256("raw_competitions", [""])[""]
    try:
        keys = competition_keys(latest[""])
    except PayloadError:
        return None
    # By competition id: the same answers read under other keys are the same inputs.
    shas = warehouse.latest_raw_sha256("raw_teams", keys)
    teams = {str(keys[key]): sha for key, sha in shas.items()}
    # The history tables read every stored answer, but an answer equal to the one before it
    # adds nothing to them: the latest answers' SHA-256s stand for what they read too.
    return _version(CODE_VERSION, HISTORY_CODE_VERSION, competitions_sha, teams)


# ---- the assets --------------------------------------------------------------------------------


def _spec(name: str, deps: list[Any], description: str) -> dg.AssetSpec:
    return table_spec(name, deps, description, code_version=CODE_VERSION)


DIM_COMPETITIONS = _spec(
    "dim_competitions",
    [raw_competitions],
    "One row per competition the API lists, with code, type, area and season.",
)
DIM_TEAMS = _spec(
    "dim_teams",
    [raw_competitions, RAW_TEAMS],
    "One row per team (de-duplicated across competitions), latest name and details.",
)
FACT_COMPETITIONS = _spec(
    "fact_competitions",
    [raw_competitions, RAW_TEAMS, DIM_COMPETITIONS, DIM_TEAMS],
    "Which team plays in which competition (competition_id, team_id), per the API now.",
)
WAREHOUSE_SPECS = [DIM_COMPETITIONS, DIM_TEAMS, FACT_COMPETITIONS, *HISTORY_SPECS]


@dg.multi_asset(
    specs=WAREHOUSE_SPECS,
    name="warehouse_tables",
    ins={
        "raw_competitions": dg.AssetIn(raw_competitions.key),
        "raw_teams": dg.AssetIn(RAW_TEAMS.key),
    },
    retry_policy=DATABASE_RETRY,
    # The tables change together or not at all: selecting one builds them all.
    can_subset=False,
)
def warehouse_tables(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    raw_competitions: dict[str, Any],
    raw_teams: RawPartitions,
) -> Iterator[dg.MaterializeResult]:
    keys = competition_keys(raw_competitions)
    teams_from = raw_teams.competitions(keys)
    # A stored answer lacks a field a column reads: keep the tables as they are (drift.py).
    refuse_drifted_answers(warehouse, raw_competitions, keys)
    # Read before the load: should newer answers land meanwhile, the record understates what
    # the tables hold (the next refresh rebuilds) rather than vouching for data they lack.
    seen = inputs_version(warehouse) or ""
    try:
        stats = warehouse.load_tables(
            [
                ("dim_competitions", competition_rows(raw_competitions)),
                ("dim_teams", RowsFromRaw(team_rows_sql(warehouse.table("dim_teams")), teams_from)),
                ("fact_competitions", RowsFromRaw(MEMBERSHIP_ROWS_SQL, teams_from)),
            ],
            inputs_version=seen,
            run_id=context.run.run_id,
            history_columns=team_columns(warehouse.table("dim_teams")),
        )
    except DatabaseUnavailable:
        raise  # the connection failed: the step's retry policy may well succeed
    except Exception as exc:
        # PostgreSQL refused the data itself (or the statement is wrong): a retry would be
        # refused the same way, so fail once, with the one line (and the cause for the UI).
        raise dg.Failure(str(exc).strip().splitlines()[0], allow_retries=False) from exc
    report_in_run = context.run.asset_selection is None or REPORT in context.run.asset_selection
    together = set(READ_TOGETHER) if any(stats[n].changes.changed for n in READ_TOGETHER) else set()
    for spec in WAREHOUSE_SPECS:
        name = spec.key.to_user_string()
        loaded = stats[name]
        if not loaded.changes.changed and not (report_in_run and name in together):
            context.log.info(
                "%s.%s: no row changed (%d rows); not written, no new materialization.",
                warehouse.schema,
                name,
                loaded.rows,
            )
            continue
        context.log.info(
            "%s.%s now holds %d rows (%d inserted, %d updated, %d deleted).",
            warehouse.schema,
            name,
            loaded.rows,
            loaded.inserted,
            loaded.updated,
            loaded.deleted,
        )
        yield dg.MaterializeResult(
            asset_key=spec.key,
            metadata={
                "dagster/row_count": loaded.rows,
                "dagster/column_schema": column_schema(warehouse.schema, name),
                "dagster/relation_identifier": f"{warehouse.schema}.{name}",
                **change_metadata(loaded.changes),
                **(
                    {}
                    if loaded.changes.changed
                    else {"unchanged": "rows equal; materialized with " + " and ".join(together)}
                ),
            },
            data_version=dg.DataVersion(loaded.version) if loaded.version else None,
        )
