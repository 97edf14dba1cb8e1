"""The assets one step at a time, as `dg.materialize` runs them: the fast lane's path through
ingestion, the IO manager, the warehouse and the report (refresh() runs in the slow lane)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from football_assets.assets.ingestion import PARTITIONS, sync_competition_partitions
from football_assets.resources.warehouse import Warehouse
from football_assets.staleness import WAREHOUSE_RUN
from football_assets_tests.test_resilience import (
    actual_tables,
    expected_summary,
    expected_tables,
    read_summary,
)
from test_support.api_double import ApiData, FootballApiDouble

PREMIER_LEAGUE = 2021


@pytest.fixture
def api_data() -> ApiData:
    """The recording cut to one competition, so one partition is the whole world."""
    data = ApiData.from_sample_dir()
    for competition in list(data.competitions):
        if competition["id"] != PREMIER_LEAGUE:
            data.remove_competition(competition["id"])
    return data


def materialize(
    defs: dg.Definitions, instance: dg.DagsterInstance, *names: str, **kwargs: str
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*(defs.assets or []), *(defs.asset_checks or [])],  # type: ignore[list-item]
        resources=defs.resources,
        instance=instance,
        selection=list(names),
        **kwargs,  # type: ignore[arg-type]
    )


def test_one_competition_goes_from_the_api_to_the_tables_and_the_report(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    materialize(live_defs, instance, "raw_competitions")
    sync_competition_partitions(instance, ["PL"])  # the sensor's job
    teams = materialize(live_defs, instance, "raw_teams", partition_key="PL")
    materialize(live_defs, instance, *(k.to_user_string() for k in WAREHOUSE_RUN))

    assert instance.get_dynamic_partitions(PARTITIONS) == ["PL"]
    (stored,) = teams.asset_materializations_for_node("raw_teams")
    assert stored.partition == "PL"
    assert stored.metadata["teams_in_this_competition"].value == 20
    assert actual_tables(warehouse) == expected_tables(api_double.data)
    assert read_summary(output_dir) == expected_summary(api_double.data)
