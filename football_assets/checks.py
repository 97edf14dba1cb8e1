"""Asset checks of the tables and the report (the raw steps check themselves): they restate the
schema's keys, so they fail when the schema was changed behind the pipeline's back."""

import csv
import io
from typing import Any

import dagster as dg

from football_assets.assets.reporting import SUMMARY_FILE, summary_csv
from football_assets.assets.warehouse import (
    DIM_COMPETITIONS,
    DIM_TEAMS,
    FACT_COMPETITIONS,
    WAREHOUSE_SPECS,
)
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse


def _unique_check(spec: dg.AssetSpec, key: str) -> dg.AssetChecksDefinition:
    table = spec.key.to_user_string()

    @dg.asset_check(
        asset=spec.key,
        name=f"{table}_key_unique",
        description=f"No two rows of {table} share ({key}).",
        blocking=True,
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        (row,) = warehouse.query(
            f"SELECT count(*) AS n, count(DISTINCT ({key})) AS d FROM {{schema}}.{table}"  # noqa: S608
        )
        duplicates = row["n"] - row["d"]
        return dg.AssetCheckResult(
            passed=duplicates == 0, metadata={"rows": row["n"], "duplicate_keys": duplicates}
        )

    return _check


@dg.asset_check(
    asset=FACT_COMPETITIONS.key,
    description="Every pair points at an existing competition and an existing team.",
    blocking=True,
)
def fact_competitions_references_resolve(warehouse: Warehouse) -> dg.AssetCheckResult:
    (row,) = warehouse.query(
        """
        SELECT count(*) FILTER (WHERE c.id IS NULL) AS orphan_competitions,
               count(*) FILTER (WHERE t.id IS NULL) AS orphan_teams
        FROM {schema}.fact_competitions f
        LEFT JOIN {schema}.dim_competitions c ON c.id = f.competition_id
        LEFT JOIN {schema}.dim_teams t ON t.id = f.team_id
        """
    )
    return dg.AssetCheckResult(
        passed=row["orphan_competitions"] == 0 and row["orphan_teams"] == 0, metadata=row
    )


@dg.asset_check(
    asset=summary_csv,
    description="summary.csv has exactly one row per competition in dim_competitions.",
)
def summary_has_every_competition(
    warehouse: Warehouse, summary_output: OutputLocation
) -> dg.AssetCheckResult:
    text = summary_output.read_bytes(SUMMARY_FILE).decode("utf-8")
    in_csv = [int(r["competition_id"]) for r in csv.DictReader(io.StringIO(text, newline=""))]
    in_table = sorted(r["id"] for r in warehouse.query("SELECT id FROM {schema}.dim_competitions"))
    missing = sorted(set(in_table) - set(in_csv))
    extra = sorted(set(in_csv) - set(in_table))
    repeated = len(in_csv) - len(set(in_csv))
    metadata: dict[str, Any] = {
        "csv_rows": len(in_csv),
        "competitions": len(in_table),
        "missing": ", ".join(map(str, missing)) or "none",
        "unexpected": ", ".join(map(str, extra)) or "none",
        "repeated_rows": repeated,
    }
    return dg.AssetCheckResult(
        passed=not missing and not extra and repeated == 0, metadata=metadata
    )


ALL_CHECKS = [
    _unique_check(DIM_COMPETITIONS, "id"),
    _unique_check(DIM_TEAMS, "id"),
    _unique_check(FACT_COMPETITIONS, "competition_id, team_id"),
    fact_competitions_references_resolve,
    summary_has_every_competition,
    # A table's columns (dagster/column_schema) changed between its last two materializations:
    # WARN once, on the materialization that changed them.
    *dg.build_column_schema_change_checks(assets=[spec.key for spec in WAREHOUSE_SPECS]),
]
