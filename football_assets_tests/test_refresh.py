"""refresh(): the warehouse run is skipped only when it would rebuild exactly what is there.

"Exactly what is there" is decided by Dagster's data and code versions: each table's data
version derives from the raw answers it was built from, the report's from its file.
"""

from __future__ import annotations

import socket
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from football_assets.refresh import HOST_TAG, PID_TAG, STARTED_TAG, UnknownCompetitions, refresh
from football_assets.resources.warehouse import Warehouse
from football_assets.staleness import TABLES, WAREHOUSE_RUN

WAREHOUSE_ASSETS = [key.to_user_string() for key in WAREHOUSE_RUN]


def built(instance: dg.DagsterInstance) -> list[str]:
    """Run ids that materialized the warehouse assets, oldest first."""
    runs = instance.get_run_records()
    return [
        r.dagster_run.run_id
        for r in reversed(runs)
        if dg.AssetKey("dim_teams") in (r.dagster_run.asset_selection or set())
        and r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    ]


def test_unchanged_raw_data_skips_the_warehouse_run_and_says_why(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    first = refresh(snapshot_defs, instance, echo=lambda _: None)
    said: list[str] = []

    again = refresh(snapshot_defs, instance, echo=said.append)

    assert first.skipped is None and len(first.run_ids) == 3
    assert again.skipped is not None and len(again.run_ids) == 2  # raw runs only
    assert built(instance) == [first.run_ids[-1]]
    assert said == [f"football-assets: {again.skipped}"]
    assert first.run_ids[-1] in again.skipped
    assert all(name in again.skipped for name in WAREHOUSE_ASSETS)


def test_a_table_emptied_behind_dagsters_back_is_rebuilt(
    snapshot_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)
    with warehouse.get_engine().begin() as conn:
        conn.execute(sa.text(f'DELETE FROM "{warehouse.schema}".fact_competitions'))

    again = refresh(snapshot_defs, instance, echo=lambda _: None)

    assert again.skipped is None
    assert warehouse.count_rows("fact_competitions") == 264


def test_a_deleted_summary_is_written_again(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)
    (output_dir / "summary.csv").unlink()

    again = refresh(snapshot_defs, instance, echo=lambda _: None)

    assert again.skipped is None
    assert (output_dir / "summary.csv").exists()


def test_tables_rebuilt_by_another_run_from_the_same_answers_are_vouched_for(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    # Dagster's versions, not which run built them, decide: a rebuild from the same answers
    # (here from `dagster asset materialize` or the UI) records the same data versions.
    refresh(snapshot_defs, instance, echo=lambda _: None)
    job = snapshot_defs.resolve_implicit_global_asset_job_def()
    tables = list(TABLES)
    other = job.execute_in_process(instance=instance, asset_selection=tables)
    assert other.success

    again = refresh(snapshot_defs, instance, echo=lambda _: None)

    assert again.skipped is not None and other.run_id in again.skipped


def test_a_report_edited_behind_dagsters_back_is_written_again(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)
    summary = output_dir / "summary.csv"
    summary.write_text(summary.read_text(encoding="utf-8") + "9999,X,Edited,1\r\n")

    again = refresh(snapshot_defs, instance, echo=lambda _: None)

    assert again.skipped is None
    assert "Edited" not in summary.read_text(encoding="utf-8")


def test_force_rebuilds_unchanged_data(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)

    forced = refresh(snapshot_defs, instance, force=True, echo=lambda _: None)

    assert forced.skipped is None and len(forced.run_ids) == 3


def test_phases_are_reported_in_order(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    seen: list[tuple[str, dict]] = []
    refresh(snapshot_defs, instance, echo=lambda _: None, on_phase=lambda n, i: seen.append((n, i)))
    assert [name for name, _ in seen] == ["competitions", "teams", "warehouse", "done"]
    assert seen[1][1] == {"total": 13}

    seen.clear()
    refresh(
        snapshot_defs,
        instance,
        competitions=["2021", "2014"],
        force=True,
        echo=lambda _: None,
        on_phase=lambda n, i: seen.append((n, i)),
    )
    # The competition list is kept as stored: no "competitions" phase, two teams to fetch.
    assert [name for name, _ in seen] == ["teams", "warehouse", "done"]
    assert seen[0][1] == {"total": 2}


def test_unknown_competitions_change_nothing_not_even_a_dead_refreshs_run(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)
    # A run a killed refresh on this host left "started" (its process is gone).
    dead = instance.add_run(
        DagsterRun(
            job_name="__ASSET_JOB",
            run_id=make_new_run_id(),
            status=dg.DagsterRunStatus.STARTED,
            tags={HOST_TAG: socket.gethostname(), PID_TAG: "999999999", STARTED_TAG: "1"},
        )
    )
    runs = instance.get_runs_count()

    with pytest.raises(UnknownCompetitions, match=r"unknown competition id 9999; known: 2000, "):
        refresh(snapshot_defs, instance, competitions=["9999"], echo=lambda _: None)

    assert instance.get_runs_count() == runs
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.STARTED
    # A refresh that does run marks it failed, as before.
    refresh(snapshot_defs, instance, competitions=["2021"], echo=lambda _: None)
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
