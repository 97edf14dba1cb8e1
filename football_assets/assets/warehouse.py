"""Warehouse layer: `dim_*` and `fact_*` tables in PostgreSQL, mirroring the API's latest answer.

Each asset returns its rows; the Postgres IO manager loads them (one set-based upsert, one
transaction per table). Only competitions the API lists now reach the tables. dim_competitions
comes from one payload, in Python. dim_teams and fact_competitions come from every raw_teams
partition: they return the SQL that extracts their rows from the stored payloads (the twin of
the reference functions in transforms.py), so thousands of payloads never leave the database.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from football_assets.assets.ingestion import raw_competitions, raw_teams
from football_assets.automation import DOWNSTREAM_CONDITION
from football_assets.resources.warehouse import RawPartitions, RowsFromRaw
from football_assets.transforms import (
    MEMBERSHIP_ROWS_SQL,
    TEAM_ROWS_SQL,
    competitions_to_rows,
    parse_competitions,
)

GROUP = "warehouse"
OWNERS = ["team:data-engineering"]
IO = "warehouse_io_manager"
# A refused or dropped database connection is mostly a blip (a restart, a failover), and each
# load is one transaction, so running the step again is safe: twice, after ~1 s then ~3 s.
# Not on the raw assets: the API client retries its own faults, and a step retry would spend
# the request budget again.
DATABASE_RETRY = dg.RetryPolicy(
    max_retries=2, delay=1, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _listed(raw: Mapping[str, Any]) -> list[str]:
    """Partition keys of the competitions the API lists now."""
    return [str(c.id) for c in parse_competitions(raw).competitions]


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    io_manager_key=IO,
    retry_policy=DATABASE_RETRY,
    automation_condition=DOWNSTREAM_CONDITION,
    ins={"raw_competitions": dg.AssetIn(raw_competitions.key)},
    description="One row per competition the API lists, with code, type, area and season.",
)
def dim_competitions(raw_competitions: dict[str, Any]) -> list[dict[str, Any]]:
    return competitions_to_rows(raw_competitions)


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    io_manager_key=IO,
    retry_policy=DATABASE_RETRY,
    automation_condition=DOWNSTREAM_CONDITION,
    ins={
        "raw_competitions": dg.AssetIn(raw_competitions.key),
        "raw_teams": dg.AssetIn(raw_teams.key),
    },
    description="One row per team (de-duplicated across competitions), latest name and details.",
)
def dim_teams(raw_competitions: dict[str, Any], raw_teams: RawPartitions) -> RowsFromRaw:
    return RowsFromRaw(TEAM_ROWS_SQL, raw_teams.only(_listed(raw_competitions)))


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    io_manager_key=IO,
    retry_policy=DATABASE_RETRY,
    automation_condition=DOWNSTREAM_CONDITION,
    ins={
        "raw_competitions": dg.AssetIn(raw_competitions.key),
        "raw_teams": dg.AssetIn(raw_teams.key),
    },
    # The foreign keys need both dimensions loaded first.
    deps=["dim_competitions", "dim_teams"],
    description="Which team plays in which competition (competition_id, team_id), per the API now.",
)
def fact_competitions(raw_competitions: dict[str, Any], raw_teams: RawPartitions) -> RowsFromRaw:
    return RowsFromRaw(MEMBERSHIP_ROWS_SQL, raw_teams.only(_listed(raw_competitions)))
