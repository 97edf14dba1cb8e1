"""Tables move only when their rows move (issue 17), by `refresh` and by the automation sensor.

The loopback API serves the snapshot, then the same answers changed in one way; what each
table records (materializations, data versions, change sets) and what summary.csv does follow.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from football_assets.refresh import refresh
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import read_table
from football_assets_tests.test_automation import Evaluator
from test_support.api_double import ApiData, FootballApiDouble

TABLES = ("dim_competitions", "dim_teams", "fact_competitions")
HISTORY = ("dim_teams_history", "competition_membership_history")
BUILT = (*TABLES, *HISTORY, "summary_csv")


def materializations(instance: dg.DagsterInstance, name: str) -> list[str]:
    """Run ids of the asset's materializations, newest first."""
    records = instance.fetch_materializations(dg.AssetKey(name), limit=1000).records
    return [r.run_id for r in records]


def counts(instance: dg.DagsterInstance) -> dict[str, int]:
    return {name: len(materializations(instance, name)) for name in BUILT}


def advance_matchday(data: ApiData) -> None:
    """One matchday later: only `currentMatchday` moves, in the list and in every teams answer."""
    with data.lock:
        for competition in data.competitions:
            season = competition.get("currentSeason") or {}
            season["currentMatchday"] = (season.get("currentMatchday") or 0) + 1
        for season in data.seasons.values():
            season["currentMatchday"] = (season.get("currentMatchday") or 0) + 1


def raw_versions(instance: dg.DagsterInstance) -> set[str]:
    records = instance.fetch_materializations(dg.AssetKey("raw_teams"), limit=100).records
    return {str(r.asset_materialization.tags["dagster/data_version"]) for r in records}  # type: ignore[union-attr,index]


def version(instance: dg.DagsterInstance, name: str) -> str | None:
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    assert event is not None and event.asset_materialization is not None
    return (event.asset_materialization.tags or {}).get("dagster/data_version")


def in_both(data: ApiData) -> int:
    return min(data.team_ids(2021) & data.team_ids(2001))


@pytest.fixture
def refreshed(
    live_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> dict[str, int]:
    refresh(live_defs, instance, echo=lambda _: None)
    return counts(instance)


def test_a_matchday_only_change_materializes_no_table_and_leaves_the_report(
    refreshed: dict[str, int],
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    output_dir: Path,
) -> None:
    summary = output_dir / "summary.csv"
    mtime, raw_before = summary.stat().st_mtime_ns, raw_versions(instance)
    advance_matchday(api_double.data)
    said: list[str] = []

    report = refresh(live_defs, instance, echo=said.append)

    assert raw_versions(instance) - raw_before  # the answers' bytes did change
    assert report.skipped is None and report.changed == []
    assert counts(instance) == refreshed
    assert summary.stat().st_mtime_ns == mtime
    assert [line for line in said if "nothing changed" in line] == [said[-1]]
    # The build that changed nothing is remembered: the same answers again skip the warehouse.
    again = refresh(live_defs, instance, echo=lambda _: None)
    assert again.skipped is not None and report.run_ids[-1] in again.skipped


def test_a_matchday_only_change_moves_nothing_when_the_automation_sensor_ticks(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    output_dir: Path,
) -> None:
    sensor = Evaluator(live_defs, instance)
    assert sensor.requested() == set()
    refresh(live_defs, instance, echo=lambda _: None)
    assert sensor.requested() == set()
    before, mtime = counts(instance), (output_dir / "summary.csv").stat().st_mtime_ns
    advance_matchday(api_double.data)
    raw = refresh_raw_only(live_defs, instance)

    # The raw answers changed, so the sensor asks for the tables; their step finds equal rows.
    requested = sensor.requested()
    assert requested == set(BUILT)
    run(live_defs, instance, requested)
    assert sensor.requested() == set()

    assert raw > 0
    assert counts(instance) == before
    assert (output_dir / "summary.csv").stat().st_mtime_ns == mtime


def test_one_venue_changed_changes_dim_teams_only_with_its_change_set(
    refreshed: dict[str, int],
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    output_dir: Path,
) -> None:
    mtime = (output_dir / "summary.csv").stat().st_mtime_ns
    assert api_double.data.update_team(57, venue="New Stadium") >= 1

    report = refresh(live_defs, instance, echo=lambda _: None)

    assert report.changed == ["dim_teams", "dim_teams_history"]
    after = counts(instance)
    assert {n for n in BUILT if after[n] != refreshed[n]} == {"dim_teams", "dim_teams_history"}
    event = instance.get_latest_materialization_event(dg.AssetKey("dim_teams"))
    meta = event.asset_materialization.metadata  # type: ignore[union-attr]
    assert (
        meta["rows_inserted"].value,
        meta["rows_updated"].value,
        meta["rows_deleted"].value,
    ) == (0, 1, 0)
    assert "| id=57 | venue | Emirates Stadium | New Stadium |" in meta["changes"].value  # type: ignore[operator]
    assert (output_dir / "summary.csv").stat().st_mtime_ns == mtime


def test_a_team_leaving_one_competition_removes_its_fact_row_and_rewrites_the_summary(
    refreshed: dict[str, int],
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    team = in_both(api_double.data)
    api_double.data.remove_team(2021, team)
    competitions = version(instance, "dim_competitions")

    report = refresh(live_defs, instance, echo=lambda _: None)

    assert "fact_competitions" in report.changed and "summary_csv" in report.changed
    # Materialized with fact_competitions so that summary_csv runs, but its rows, and so its
    # data version, are the same: nothing downstream of it sees a change.
    assert version(instance, "dim_competitions") == competitions
    pairs = {
        (r["competition_id"], r["team_id"]) for r in read_table(warehouse, "fact_competitions")
    }
    assert (2021, team) not in pairs and (2001, team) in pairs
    event = instance.get_latest_materialization_event(dg.AssetKey("fact_competitions"))
    meta = event.asset_materialization.metadata  # type: ignore[union-attr]
    assert meta["rows_deleted"].value == 1
    assert f"| competition_id=2021, team_id={team} | (row) | deleted | ∅ |" in meta["changes"].value  # type: ignore[operator]
    summary = (output_dir / "summary.csv").read_text(encoding="utf-8")
    assert "2021,PL,Premier League,19" in summary.splitlines()


def test_a_team_leaving_reaches_the_summary_when_the_automation_sensor_ticks(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    output_dir: Path,
) -> None:
    sensor = Evaluator(live_defs, instance)
    assert sensor.requested() == set()
    refresh(live_defs, instance, echo=lambda _: None)
    assert sensor.requested() == set()
    api_double.data.remove_team(2021, in_both(api_double.data))
    refresh_raw_only(live_defs, instance)

    # Ticks and runs as the daemon would, until the sensor asks for nothing more.
    for _ in range(4):
        requested = sensor.requested()
        if not requested:
            break
        run(live_defs, instance, requested)

    assert sensor.requested() == set()
    summary = (output_dir / "summary.csv").read_text(encoding="utf-8")
    assert "2021,PL,Premier League,19" in summary.splitlines()


# ---- helpers ----------------------------------------------------------------------------------


def refresh_raw_only(defs: dg.Definitions, instance: dg.DagsterInstance) -> int:
    """The daily schedule's two runs: the list, then every competition's teams."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    keys = instance.get_dynamic_partitions("competitions")
    before = len(materializations(instance, "raw_competitions"))
    run(defs, instance, {"raw_competitions"})
    run(
        defs,
        instance,
        {"raw_teams"},
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
    )
    return len(materializations(instance, "raw_competitions")) - before


def run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    names: set[str],
    tags: dict[str, str] | None = None,
) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(n) for n in sorted(names)], tags=tags
    )
    assert result.success
