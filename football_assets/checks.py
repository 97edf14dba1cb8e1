"""Asset checks beside the assets they check: table integrity, completeness of the report."""

import csv
from pathlib import Path

import dagster as dg

from football_assets import settings
from football_assets.assets.ingestion import raw_teams
from football_assets.assets.reporting import SUMMARY_FILE, SummaryConfig
from football_assets.resources.warehouse import Warehouse


def _q(warehouse: Warehouse, statement: str) -> list[dict]:
    return warehouse.query(statement.format(s=f'"{warehouse.schema}"'))


@dg.asset_check(
    asset=raw_teams,
    description="WARN when a listed competition has zero teams (normal between seasons).",
)
def competitions_have_teams(warehouse: Warehouse) -> dg.AssetCheckResult:
    rows = _q(
        warehouse,
        """
        WITH latest AS (
            SELECT DISTINCT ON (partition_key) partition_key, payload
            FROM {s}.raw_responses WHERE asset = 'raw_teams'
            ORDER BY partition_key, id DESC
        ), listed AS (
            SELECT (c->>'id') AS id, c->>'name' AS name
            FROM (SELECT payload FROM {s}.raw_responses WHERE asset = 'raw_competitions'
                  ORDER BY id DESC LIMIT 1) r,
                 jsonb_array_elements(r.payload->'competitions') c
        )
        SELECT l.id, l.name FROM listed l JOIN latest t ON t.partition_key = l.id
        WHERE jsonb_array_length(t.payload->'teams') = 0
        ORDER BY l.id::int
        """,
    )
    names = [f"{r['name']} ({r['id']})" for r in rows]
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        description=("Zero teams: " + ", ".join(names))
        if names
        else "Every competition has teams.",
        metadata={"zero_team_competitions": ", ".join(names) or "none", "count": len(rows)},
    )


def _unique_check(table: str, key: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name=f"{table}_key_unique",
        description=f"No two rows of {table} share ({key}).",
        blocking=True,
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        (row,) = _q(
            warehouse,
            f"SELECT count(*) AS n, count(DISTINCT ({key})) AS d FROM {{s}}.{table}",  # noqa: S608
        )
        duplicates = row["n"] - row["d"]
        return dg.AssetCheckResult(
            passed=duplicates == 0, metadata={"rows": row["n"], "duplicate_keys": duplicates}
        )

    return _check


@dg.asset_check(
    asset="fact_competitions",
    description="Every pair points at an existing competition and an existing team.",
    blocking=True,
)
def fact_competitions_references_resolve(warehouse: Warehouse) -> dg.AssetCheckResult:
    (row,) = _q(
        warehouse,
        """
        SELECT count(*) FILTER (WHERE c.id IS NULL) AS orphan_competitions,
               count(*) FILTER (WHERE t.id IS NULL) AS orphan_teams
        FROM {s}.fact_competitions f
        LEFT JOIN {s}.dim_competitions c ON c.id = f.competition_id
        LEFT JOIN {s}.dim_teams t ON t.id = f.team_id
        """,
    )
    return dg.AssetCheckResult(
        passed=row["orphan_competitions"] == 0 and row["orphan_teams"] == 0, metadata=row
    )


@dg.asset_check(
    asset="summary_csv",
    description="summary.csv has exactly one row per competition in dim_competitions.",
)
def summary_has_every_competition(
    warehouse: Warehouse, config: SummaryConfig
) -> dg.AssetCheckResult:
    directory = Path(config.output_dir).absolute() if config.output_dir else settings.output_dir()
    path = directory / SUMMARY_FILE
    with path.open(encoding="utf-8", newline="") as handle:
        in_csv = [int(r["competition_id"]) for r in csv.DictReader(handle)]
    in_table = sorted(r["id"] for r in _q(warehouse, "SELECT id FROM {s}.dim_competitions"))
    missing = sorted(set(in_table) - set(in_csv))
    extra = sorted(set(in_csv) - set(in_table))
    repeated = len(in_csv) - len(set(in_csv))
    return dg.AssetCheckResult(
        passed=not missing and not extra and repeated == 0,
        metadata={
            "csv_rows": len(in_csv),
            "competitions": len(in_table),
            "missing": ", ".join(map(str, missing)) or "none",
            "unexpected": ", ".join(map(str, extra)) or "none",
            "repeated_rows": repeated,
        },
    )


ALL_CHECKS = [
    competitions_have_teams,
    _unique_check("dim_competitions", "id"),
    _unique_check("dim_teams", "id"),
    _unique_check("fact_competitions", "competition_id, team_id"),
    fact_competitions_references_resolve,
    summary_has_every_competition,
]
