"""refresh(): the warehouse run is skipped only when it would rebuild exactly what is there."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from football_assets.refresh import INPUTS_TAG, WAREHOUSE_ASSETS, refresh
from football_assets.resources.warehouse import Warehouse


def built(instance: dg.DagsterInstance) -> list[str]:
    """Run ids that materialized the warehouse assets, oldest first."""
    runs = instance.get_run_records()
    return [
        r.dagster_run.run_id
        for r in reversed(runs)
        if INPUTS_TAG in r.dagster_run.tags and r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    ]


def test_unchanged_raw_data_skips_the_warehouse_run_and_says_why(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    first = refresh(snapshot_defs, instance, echo=lambda _: None)
    said: list[str] = []

    again = refresh(snapshot_defs, instance, echo=said.append)

    assert first.skipped is None and len(first.run_ids) == 3
    assert again.skipped is not None and len(again.run_ids) == 2  # raw runs only
    assert again.inputs_version == first.inputs_version
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


def test_a_table_rebuilt_by_another_run_is_not_vouched_for(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)
    job = snapshot_defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("dim_teams")]
    ).success

    again = refresh(snapshot_defs, instance, echo=lambda _: None)

    assert again.skipped is None


def test_force_rebuilds_unchanged_data(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)

    forced = refresh(snapshot_defs, instance, force=True, echo=lambda _: None)

    assert forced.skipped is None and len(forced.run_ids) == 3
