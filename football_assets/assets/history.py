"""Specs of the history tables `dim_teams_history` and `competition_membership_history`; the
warehouse step (`assets/warehouse.py`) builds them in its transaction (`history_sql.py`)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from football_assets.assets.ingestion import RAW_TEAMS, raw_competitions
from football_assets.assets.table_specs import table_spec
from football_assets.resources.defaults import DEFAULT_SCHEMA
from football_assets.resources.warehouse_schema import column_schema

# Bump when the history SQL changes what a history table holds.
HISTORY_CODE_VERSION = "1"


def _spec(name: str, deps: list[Any], description: str) -> dg.AssetSpec:
    return table_spec(
        name,
        deps,
        description,
        code_version=HISTORY_CODE_VERSION,
        metadata={"dagster/column_schema": column_schema(DEFAULT_SCHEMA, name)},
    )


DIM_TEAMS_HISTORY = _spec(
    "dim_teams_history",
    [RAW_TEAMS],
    "One row per version of a team: dim_teams' columns, valid_from, valid_to, is_current. "
    "Times are when the API said it (the answer's fetch time); the current versions equal "
    "dim_teams. Rebuilt from raw_responses in the warehouse step's transaction.",
)
MEMBERSHIP_HISTORY = _spec(
    "competition_membership_history",
    [raw_competitions, RAW_TEAMS],
    "Which team played in which competition and season, joined_at to left_at (NULL while a "
    "member; the fetch time of the first answer without it). The open intervals equal "
    "fact_competitions. Rebuilt from raw_responses in the warehouse step's transaction.",
)
HISTORY_SPECS = [DIM_TEAMS_HISTORY, MEMBERSHIP_HISTORY]
