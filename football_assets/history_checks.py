"""Blocking checks of the history tables: they equal a rebuild from raw_responses, and their
current rows agree with dim_teams and fact_competitions (evaluated in a step of `checks`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import dagster as dg

from football_assets.assets.change_sets import changes_markdown
from football_assets.assets.history import DIM_TEAMS_HISTORY, MEMBERSHIP_HISTORY
from football_assets.assets.warehouse import team_columns
from football_assets.resources.history_sql import MEMBERSHIP, compare_history
from football_assets.resources.history_sql import TEAMS as TEAMS_HISTORY
from football_assets.resources.table_changes import ChangeSet
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_errors import driver
from football_assets.resources.warehouse_sql import session_settings

# Rows of the history whose current part differs from the table it shadows.
_CURRENT_SQL = {
    "dim_teams_history": """
        SELECT count(*) AS n, min(id) AS first FROM (
          (SELECT {cols} FROM {schema}.dim_teams_history WHERE is_current
           EXCEPT SELECT {cols} FROM {schema}.dim_teams)
          UNION ALL
          (SELECT {cols} FROM {schema}.dim_teams
           EXCEPT SELECT {cols} FROM {schema}.dim_teams_history WHERE is_current)) AS d(id)
    """,
    "competition_membership_history": """
        SELECT count(*) AS n, min(team_id) AS first FROM (
          (SELECT competition_id, team_id FROM {schema}.competition_membership_history
           WHERE left_at IS NULL EXCEPT SELECT competition_id, team_id
           FROM {schema}.fact_competitions)
          UNION ALL
          (SELECT competition_id, team_id FROM {schema}.fact_competitions
           EXCEPT SELECT competition_id, team_id FROM {schema}.competition_membership_history
           WHERE left_at IS NULL)) AS d(competition_id, team_id)
    """,
}
_SHADOWS = {"dim_teams_history": "dim_teams", "competition_membership_history": "fact_competitions"}


def history_drift(warehouse: Warehouse, team_columns: list[str]) -> dict[str, ChangeSet]:
    """What rebuilding the history tables now would change, computed and rolled back."""
    with warehouse.get_engine().connect() as conn:  # never committed: rolled back on close
        cursor = driver(conn).cursor()
        session_settings(cursor)
        history = {name: warehouse.table(name) for name in (TEAMS_HISTORY, MEMBERSHIP)}
        return compare_history(cursor, history, team_columns)


def _spec(spec: dg.AssetSpec) -> dg.AssetCheckSpec:
    name = spec.key.to_user_string()
    return dg.AssetCheckSpec(
        f"{name}_is_true",
        asset=spec.key,
        description=f"{name} equals a rebuild from raw_responses (nobody edited it), and its "
        f"current rows equal {_SHADOWS[name]}.",
        blocking=True,
    )


HISTORY_SPECS = (_spec(DIM_TEAMS_HISTORY), _spec(MEMBERSHIP_HISTORY))


def history_results(
    warehouse: Warehouse, keys: Sequence[dg.AssetCheckKey]
) -> Iterator[dg.AssetCheckResult]:
    """The verdicts of these history checks; one rebuild, rolled back, serves both tables."""
    drifts = history_drift(warehouse, team_columns(warehouse.table("dim_teams")))
    cols = ", ".join(c.name for c in warehouse.table("dim_teams").columns)
    for key in keys:
        name = key.asset_key.to_user_string()
        drift = drifts[name]
        (current,) = warehouse.query(_CURRENT_SQL[name].replace("{cols}", cols))
        problems = []
        if drift.changed:
            problems.append(
                f"{name} differs from the stored answers: {drift.inserted} rows missing, "
                f"{drift.deleted} rows extra, {drift.updated} rows edited (edited by hand?); "
                "the next build rebuilds it"
            )
        if current["n"]:
            problems.append(
                f"{current['n']} current rows differ from {_SHADOWS[name]} "
                f"(first team id {current['first']})"
            )
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=not problems,
            description="; ".join(problems) or None,
            metadata={
                "rows_missing": drift.inserted,
                "rows_extra": drift.deleted,
                "rows_edited": drift.updated,
                "current_rows_differing": current["n"],
                # What a rebuild would change: "inserted" rows are missing from the table.
                "differences": dg.MetadataValue.md(changes_markdown(drift)),
            },
        )
