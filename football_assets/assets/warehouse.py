"""Warehouse layer: `dim_competitions`, `dim_teams`, `fact_competitions`, changed as one.

One step builds the three tables and loads them in ONE transaction: a failure, a refused value
or a kill at any point leaves every table as it was, so the warehouse never shows the new
competitions with the old teams. Dagster's lineage still shows three assets. Each table's rows
are extracted here: `dim_competitions` from the (small) competition list in Python, the other
two by SQL over the stored JSONB answers of every competition, so thousands of payloads never
become Python objects. Only competitions the API lists now reach the tables.

Versions: each table's data version is derived from what it was built from (its code version
and the SHA-256 of every raw answer it read), so a rebuild from unchanged answers reports the
same version, and nothing downstream moves. `refresh` compares `expected_versions` with the
last materializations to skip a rebuild that would change nothing.
"""

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from football_assets.assets.ingestion import RAW_TEAMS, raw_competitions
from football_assets.assets.ingestion_checks import refuse_drifted_answers
from football_assets.payloads import PayloadError, competition_ids, parse_competitions
from football_assets.policies import (
    DAILY_FRESHNESS,
    DATABASE_RETRY,
    DOWNSTREAM_CONDITION,
    OWNERS,
    WAREHOUSE,
)
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_errors import DatabaseUnavailable
from football_assets.resources.warehouse_schema import column_schema
from football_assets.resources.warehouse_sql import RawPartitions, RowsFromRaw

IO_MANAGER = "warehouse_io_manager"
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
# The load order (by competition id, then as listed) breaks ties among duplicate teams: the
# last one wins. Computed, not a window: ordering first would sort every team's JSON.
_ORDER = "latest.partition_key::bigint * 1000000000 + a.n AS _ord"


def _json_text(path: tuple[str, ...]) -> str:
    return "a.team #>> '{" + ",".join(path) + "}'"


def team_rows_sql(table: sa.Table) -> str:
    """SELECT dim_teams' columns (and `_ord`) from `latest(partition_key, payload)`."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    column_types = {c.name: c.type.compile(dialect=dialect).lower() for c in table.columns}
    columns = [
        f"({_json_text(path)}){_CASTS.get(column_types[name], '')} AS {name}"
        for name, path in TEAM_FIELDS.items()
    ]
    return "SELECT " + ",\n       ".join([*columns, _ORDER]) + _APPEARANCES


MEMBERSHIP_ROWS_SQL = f"""
SELECT latest.partition_key::integer AS competition_id,
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


def expected_versions(warehouse: Warehouse) -> dict[str, str] | None:
    """The data version each table would get if built now from the stored raw answers; None
    while the competition list was never stored."""
    latest = warehouse.latest_raw("raw_competitions", [""])
    if "" not in latest:
        return None
    competitions_sha = warehouse.latest_raw_sha256("raw_competitions", [""])[""]
    try:
        listed = competition_ids(latest[""])
    except PayloadError:
        return None
    teams = warehouse.latest_raw_sha256("raw_teams", listed)
    both = _version(CODE_VERSION, competitions_sha, teams)
    return {
        "dim_competitions": _version(CODE_VERSION, competitions_sha),
        "dim_teams": both,
        "fact_competitions": both,
    }


# ---- the assets --------------------------------------------------------------------------------


def _spec(name: str, deps: list[Any], description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        group_name=WAREHOUSE,
        owners=OWNERS,
        kinds={"postgres"},
        deps=deps,
        code_version=CODE_VERSION,
        automation_condition=DOWNSTREAM_CONDITION,
        freshness_policy=DAILY_FRESHNESS,
        # What the IO manager reads when this asset is an input or load_asset_value asks for it.
        metadata={"dagster/table_name": name},
        description=description,
    ).with_io_manager_key(IO_MANAGER)


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
WAREHOUSE_SPECS = [DIM_COMPETITIONS, DIM_TEAMS, FACT_COMPETITIONS]


@dg.multi_asset(
    specs=WAREHOUSE_SPECS,
    name="warehouse_tables",
    ins={
        "raw_competitions": dg.AssetIn(raw_competitions.key),
        "raw_teams": dg.AssetIn(RAW_TEAMS.key),
    },
    retry_policy=DATABASE_RETRY,
    # The three change together or not at all: selecting one builds all three.
    can_subset=False,
)
def warehouse_tables(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    raw_competitions: dict[str, Any],
    raw_teams: RawPartitions,
) -> Iterator[dg.MaterializeResult]:
    listed = competition_ids(raw_competitions)
    teams_from = raw_teams.only(listed)
    # A stored answer lacks a field a column reads: keep the tables as they are (drift.py).
    refuse_drifted_answers(warehouse, raw_competitions, teams_from.partition_keys)
    # Read before the load: should newer answers land meanwhile, the version understates what
    # the tables hold (the next refresh rebuilds) rather than vouching for data they lack.
    versions = expected_versions(warehouse) or {}
    try:
        stats = warehouse.load_tables(
            [
                ("dim_competitions", competition_rows(raw_competitions)),
                ("dim_teams", RowsFromRaw(team_rows_sql(warehouse.table("dim_teams")), teams_from)),
                ("fact_competitions", RowsFromRaw(MEMBERSHIP_ROWS_SQL, teams_from)),
            ]
        )
    except DatabaseUnavailable:
        raise  # the connection failed: the step's retry policy may well succeed
    except Exception as exc:
        # PostgreSQL refused the data itself (or the statement is wrong): a retry would be
        # refused the same way, so fail once, with the one line (and the cause for the UI).
        raise dg.Failure(str(exc).strip().splitlines()[0], allow_retries=False) from exc
    for spec in WAREHOUSE_SPECS:
        name = spec.key.to_user_string()
        loaded = stats[name]
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
                "rows_inserted": loaded.inserted,
                "rows_updated": loaded.updated,
                "rows_deleted": loaded.deleted,
            },
            data_version=dg.DataVersion(versions[name]) if name in versions else None,
        )
