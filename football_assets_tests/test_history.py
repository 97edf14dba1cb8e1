"""dim_teams_history and competition_membership_history: when the API said what, kept true.

Served by the loopback API: the snapshot, then one change; the history's times are the stored
answers' fetch times, its current rows equal the tables, and a rebuild gives the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from football_assets.refresh import refresh
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import read_table
from test_support.api_double import FootballApiDouble

HISTORY = ("dim_teams_history", "competition_membership_history")
TEAM = 57  # Arsenal: Premier League (2021) and Champions League (2001)


def rows(warehouse: Warehouse, name: str) -> list[dict[str, Any]]:
    return sorted(read_table(warehouse, name), key=lambda r: tuple(str(v) for v in r.values()))


def fetched_at(warehouse: Warehouse, competition: str) -> Any:
    """When the latest stored answer of this competition's teams was fetched."""
    (row,) = warehouse.query(
        "SELECT fetched_at FROM {schema}.raw_responses WHERE asset = 'raw_teams' "
        "AND partition_key = :k ORDER BY id DESC LIMIT 1",
        k=competition,
    )
    return row["fetched_at"]


def current_equals_tables(warehouse: Warehouse) -> None:
    strip = ("valid_from", "valid_to", "is_current")
    current = [
        {k: v for k, v in r.items() if k not in strip}
        for r in read_table(warehouse, "dim_teams_history")
        if r["is_current"]
    ]
    assert sorted(current, key=lambda r: r["id"]) == sorted(
        read_table(warehouse, "dim_teams"), key=lambda r: r["id"]
    )
    members = {
        (r["competition_id"], r["team_id"])
        for r in read_table(warehouse, "competition_membership_history")
        if r["left_at"] is None
    }
    facts = {
        (r["competition_id"], r["team_id"]) for r in read_table(warehouse, "fact_competitions")
    }
    assert members == facts


def check_results(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, Any]:
    """Run the history checks alone, as `dagster asset check` or the UI would."""
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [dg.AssetCheckKey(dg.AssetKey(name), f"{name}_is_true") for name in HISTORY]
    result = job.get_subset(asset_selection=set(), asset_check_selection=set(keys))
    result = result.execute_in_process(instance=instance, raise_on_error=False)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def refreshed(live_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path) -> None:
    refresh(live_defs, instance, echo=lambda _: None)


def test_a_venue_change_closes_the_old_version_when_the_api_said_the_new_one(
    refreshed: None,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    first_seen = min(fetched_at(warehouse, "CL"), fetched_at(warehouse, "PL"))
    assert api_double.data.update_team(TEAM, venue="New Stadium") == 2

    report = refresh(live_defs, instance, echo=lambda _: None)

    versions = [r for r in rows(warehouse, "dim_teams_history") if r["id"] == TEAM]
    versions.sort(key=lambda r: r["valid_from"])
    said = min(fetched_at(warehouse, "CL"), fetched_at(warehouse, "PL"))
    assert [(v["venue"], v["valid_from"], v["valid_to"], v["is_current"]) for v in versions] == [
        ("Emirates Stadium", first_seen, said, False),
        ("New Stadium", said, None, True),
    ]
    assert "dim_teams_history" in report.changed
    assert "competition_membership_history" not in report.changed
    current_equals_tables(warehouse)


def test_a_team_leaving_one_competition_closes_that_membership_at_the_answers_fetch_time(
    refreshed: None,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    api_double.data.remove_team(2021, TEAM)

    refresh(live_defs, instance, echo=lambda _: None)

    spans = {
        r["competition_id"]: r
        for r in read_table(warehouse, "competition_membership_history")
        if r["team_id"] == TEAM
    }
    assert spans[2021]["left_at"] == fetched_at(warehouse, "PL")
    assert spans[2001]["left_at"] is None
    current_equals_tables(warehouse)


def test_dropped_history_tables_are_rebuilt_equal_from_raw_responses(
    refreshed: None,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    api_double.data.update_team(TEAM, venue="New Stadium")
    api_double.data.remove_team(2021, 61)
    refresh(live_defs, instance, echo=lambda _: None)
    before = {name: rows(warehouse, name) for name in HISTORY}
    with warehouse.get_engine().begin() as conn:
        for name in HISTORY:
            conn.execute(sa.text(f'DROP TABLE "{warehouse.schema}"."{name}"'))
    warehouse.dispose()  # the next connection creates them again, empty

    again = refresh(live_defs, instance, echo=lambda _: None)

    assert again.skipped is None
    assert {name: rows(warehouse, name) for name in HISTORY} == before
    current_equals_tables(warehouse)


@pytest.mark.parametrize("edit", ["delete a version", "overlap the next version"])
def test_a_hand_edited_history_is_named_by_its_check_and_rebuilt_by_the_next_refresh(
    edit: str,
    refreshed: None,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    api_double.data.update_team(TEAM, venue="New Stadium")
    refresh(live_defs, instance, echo=lambda _: None)
    before = rows(warehouse, "dim_teams_history")
    statement = {
        "delete a version": "DELETE FROM {t} WHERE id = :id AND NOT is_current",
        "overlap the next version": "UPDATE {t} SET valid_to = valid_to + interval '1 day' "
        "WHERE id = :id AND NOT is_current",
    }[edit]
    with warehouse.get_engine().begin() as conn:
        table = f'"{warehouse.schema}".dim_teams_history'
        assert conn.execute(sa.text(statement.replace("{t}", table)), {"id": TEAM}).rowcount == 1

    checked = check_results(live_defs, instance)
    again = refresh(live_defs, instance, echo=lambda _: None)

    verdict = checked["dim_teams_history"]
    assert not verdict.passed
    assert "dim_teams_history differs from the stored answers" in (verdict.description or "")
    assert f"id={TEAM}" in verdict.metadata["differences"].value
    assert checked["competition_membership_history"].passed
    # The next refresh does not build on it: it rebuilds, and its change set says so.
    assert again.skipped is None and "dim_teams_history" in again.changed
    assert rows(warehouse, "dim_teams_history") == before
    event = instance.get_latest_materialization_event(dg.AssetKey("dim_teams_history"))
    meta = event.asset_materialization.metadata  # type: ignore[union-attr]
    assert f"id={TEAM}" in meta["changes"].value  # type: ignore[operator]
    assert check_results(live_defs, instance)["dim_teams_history"].passed
