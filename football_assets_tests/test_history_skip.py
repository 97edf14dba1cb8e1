"""The history rebuild is skipped when it provably changes nothing (issue 17, +25 %).

A refresh whose answers moved only in bytes leaves the history tables unbuilt, yet recorded; a
new answer, a delisting or a hand edit (seen by a trigger, or its absence) rebuilds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from football_assets.refresh import refresh
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.test_change_sets import advance_matchday
from football_assets_tests.test_history import TEAM, current_equals_tables
from test_support.api_double import FootballApiDouble

HISTORY = ("dim_teams_history", "competition_membership_history")


def recorded(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    rows = warehouse.query("SELECT * FROM {schema}.table_versions")
    return {row["table_name"]: row for row in rows}


def row_versions(warehouse: Warehouse) -> dict[str, list[str]]:
    """Each history row's xmin: a rebuild that wrote any row would move one."""
    return {
        name: sorted(
            r["x"] for r in warehouse.query(f"SELECT xmin::text AS x FROM {{schema}}.{name}")
        )
        for name in HISTORY
    }


@pytest.fixture
def refreshed(live_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path) -> str:
    return refresh(live_defs, instance, echo=lambda _: None).run_ids[-1]


def test_a_matchday_only_change_skips_the_history_rebuild_and_a_venue_change_runs_it(
    refreshed: str,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    first = recorded(warehouse)
    assert first["history_answers"]["changed_run_id"] == refreshed  # the first build rebuilt
    untouched = row_versions(warehouse)
    advance_matchday(api_double.data)

    report = refresh(live_defs, instance, echo=lambda _: None)

    build = report.run_ids[-1]
    after = recorded(warehouse)
    assert report.skipped is None and report.changed == []
    # The build ran and is recorded, for the history tables too, but did not rebuild them.
    assert after["history_answers"]["checked_run_id"] == build != refreshed
    assert after["history_answers"]["changed_run_id"] == refreshed
    for name in HISTORY:
        assert after[name]["checked_run_id"] == build
        assert after[name]["data_version"] == first[name]["data_version"]
    assert row_versions(warehouse) == untouched

    assert api_double.data.update_team(TEAM, venue="New Stadium") == 2
    venue = refresh(live_defs, instance, echo=lambda _: None)

    assert recorded(warehouse)["history_answers"]["changed_run_id"] == venue.run_ids[-1]
    assert "dim_teams_history" in venue.changed
    current = [
        r["venue"]
        for r in warehouse.query("SELECT * FROM {schema}.dim_teams_history WHERE id = :i", i=TEAM)
    ]
    assert sorted(current) == ["Emirates Stadium", "New Stadium"]
    current_equals_tables(warehouse)


def test_answers_stored_before_teams_were_hashed_on_arrival_are_hashed_when_the_schema_heals(
    refreshed: str,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    # The raw table as the version before this one left it: answers without `teams_hash`.
    with warehouse.get_engine().begin() as conn:
        conn.execute(sa.text(f'ALTER TABLE "{warehouse.schema}".raw_responses DROP teams_hash'))
    advance_matchday(api_double.data)

    report = refresh(live_defs, instance, echo=lambda _: None)

    (unhashed,) = warehouse.query(
        "SELECT count(*) AS n FROM {schema}.raw_responses "
        "WHERE asset = 'raw_teams' AND teams_hash IS NULL"
    )
    assert unhashed["n"] == 0
    assert report.changed == []
    assert recorded(warehouse)["history_answers"]["changed_run_id"] == refreshed  # skipped
    assert api_double.data.update_team(TEAM, venue="New Stadium") == 2
    venue = refresh(live_defs, instance, echo=lambda _: None)
    assert recorded(warehouse)["history_answers"]["changed_run_id"] == venue.run_ids[-1]
    current_equals_tables(warehouse)


def test_a_delisted_competition_closes_its_memberships_though_no_teams_answer_changed(
    refreshed: str,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    api_double.data.remove_competition(2021)

    report = refresh(live_defs, instance, echo=lambda _: None)

    spans = warehouse.query(
        "SELECT left_at FROM {schema}.competition_membership_history WHERE competition_id = 2021"
    )
    assert spans and all(s["left_at"] is not None for s in spans)
    assert "competition_membership_history" in report.changed
    assert recorded(warehouse)["history_answers"]["changed_run_id"] == report.run_ids[-1]
    current_equals_tables(warehouse)


CHANGE_A_VALUE = "UPDATE {t} SET venue = 'Edited' WHERE id = :id AND is_current"
EDITS = {
    "a value changed": [CHANGE_A_VALUE],
    "a version deleted": ["DELETE FROM {t} WHERE id = :id"],
    "the trigger dropped, then a value changed": [
        "DROP TRIGGER history_edited ON {t}",
        CHANGE_A_VALUE,
    ],
    "the trigger disabled, then a value changed": [
        "ALTER TABLE {t} DISABLE TRIGGER history_edited",
        CHANGE_A_VALUE,
    ],
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_hand_edit_is_repaired_by_the_next_refresh_though_only_bytes_changed(
    edit: str,
    refreshed: str,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    before = {
        name: sorted(map(str, warehouse.query(f"SELECT * FROM {{schema}}.{name}")))
        for name in HISTORY
    }
    with warehouse.get_engine().begin() as conn:
        table = f'"{warehouse.schema}".dim_teams_history'
        for statement in EDITS[edit]:
            conn.execute(sa.text(statement.replace("{t}", table)), {"id": TEAM})
    advance_matchday(api_double.data)

    report = refresh(live_defs, instance, echo=lambda _: None)

    after = {
        name: sorted(map(str, warehouse.query(f"SELECT * FROM {{schema}}.{name}")))
        for name in HISTORY
    }
    assert after == before
    assert "dim_teams_history" in report.changed  # the repair, in its change set
    assert recorded(warehouse)["history_answers"]["changed_run_id"] == report.run_ids[-1]
    current_equals_tables(warehouse)


def test_a_hand_edit_of_competition_membership_history_is_repaired_too(
    refreshed: str,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    before = sorted(
        map(str, warehouse.query("SELECT * FROM {schema}.competition_membership_history"))
    )
    with warehouse.get_engine().begin() as conn:
        table = f'"{warehouse.schema}".competition_membership_history'
        conn.execute(
            sa.text(f"UPDATE {table} SET left_at = now() WHERE team_id = :id"), {"id": TEAM}
        )
    advance_matchday(api_double.data)

    report = refresh(live_defs, instance, echo=lambda _: None)

    assert (
        sorted(map(str, warehouse.query("SELECT * FROM {schema}.competition_membership_history")))
        == before
    )
    assert "competition_membership_history" in report.changed
    current_equals_tables(warehouse)
