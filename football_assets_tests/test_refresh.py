"""refresh(): the warehouse run is skipped only when it would rebuild exactly what is there.

"Exactly what is there" is decided by Dagster's data and code versions: each table's data
version derives from the raw answers it was built from, the report's from its file.
"""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from football_assets.assets.ingestion import RAW_TEAMS
from football_assets.progress import Fetched, Phase, Waiting
from football_assets.refresh import (
    HOST_TAG,
    PID_TAG,
    STARTED_TAG,
    UnknownCompetitions,
    fail_orphaned_runs,
    refresh,
)
from football_assets.resources.warehouse import Warehouse
from football_assets.staleness import TABLES, WAREHOUSE_RUN
from test_support.api_double import FootballApiDouble, make_team

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
    refresh(snapshot_defs, instance, echo=lambda _: None, observer=Phases(seen))
    assert [name for name, _ in seen] == ["competitions", "teams", "warehouse", "done"]
    assert seen[1][1] == {"total": 13}

    seen.clear()
    refresh(
        snapshot_defs,
        instance,
        competitions=["2021", "2014"],
        force=True,
        echo=lambda _: None,
        observer=Phases(seen),
    )
    # The competition list is kept as stored: no "competitions" phase, two teams to fetch.
    assert [name for name, _ in seen] == ["teams", "warehouse", "done"]
    assert seen[0][1] == {"total": 2}


class Phases:
    """A RefreshObserver recording (phase, {"total": n} for the teams) as they come."""

    def __init__(self, seen: list[tuple[str, dict]]) -> None:
        self.seen = seen

    def phase(self, phase: Phase, total: int | None = None) -> None:
        self.seen.append((phase, {} if total is None else {"total": total}))

    def waiting(self, wait: Waiting) -> None: ...

    def fetched(self, fetched: Fetched) -> None: ...

    def skipped(self, reason: str) -> None: ...

    def failed(self, step: str, message: str) -> None: ...


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

    with pytest.raises(UnknownCompetitions, match=r"unknown competition 9999; valid: WC, CL, "):
        refresh(snapshot_defs, instance, competitions=["9999"], echo=lambda _: None)

    assert instance.get_runs_count() == runs
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.STARTED
    # A refresh that does run marks it failed, as before.
    refresh(snapshot_defs, instance, competitions=["2021"], echo=lambda _: None)
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE


def test_orphaned_runs_of_another_host_are_left_alone(instance: dg.DagsterInstance) -> None:
    """Run storage shared by hosts (a deployment's PostgreSQL): a pid is only meaningful on
    its own host, so another host's live run must never be marked failed from here."""

    def started_run(host: str) -> DagsterRun:
        return instance.add_run(
            DagsterRun(
                job_name="__ASSET_JOB",
                run_id=make_new_run_id(),
                status=dg.DagsterRunStatus.STARTED,
                # A pid no process here has: dead here, alive (say) on its own host.
                tags={HOST_TAG: host, PID_TAG: "999999999", STARTED_TAG: "1"},
            )
        )

    here = started_run(socket.gethostname())
    elsewhere = started_run(f"not-{socket.gethostname()}.example")

    assert fail_orphaned_runs(instance) == [here.run_id]

    assert instance.get_run_by_id(here.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.STARTED


# ---- the summary's staleness rule, as a user sees it: summary.csv rewritten or not -----------


def summary_writes(instance: dg.DagsterInstance) -> int:
    return len(instance.fetch_materializations(dg.AssetKey("summary_csv"), limit=1000).records)


def teams_of(summary: Path, competition: str) -> str:
    with summary.open(encoding="utf-8", newline="") as handle:
        rows = {row["competition_id"]: row for row in csv.DictReader(handle)}
    return rows[competition]["number_of_teams"]


def test_tables_rebuilt_from_new_answers_by_another_run_get_their_summary_rebuilt(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    output_dir: Path,
) -> None:
    """Someone fetched Premier League's teams again and rebuilt the tables (the UI, another
    run), not the report: the tables are current, the summary is not, so refresh rewrites it."""
    refresh(live_defs, instance, echo=lambda _: None)
    summary = output_dir / "summary.csv"
    assert teams_of(summary, "2021") == "20"
    api_double.data.add_team(2021, make_team(990_401, "Promoted FC"))
    job = live_defs.resolve_implicit_global_asset_job_def()
    other_runs = [
        job.execute_in_process(
            instance=instance, asset_selection=[RAW_TEAMS.key], partition_key="PL"
        ),
        job.execute_in_process(instance=instance, asset_selection=TABLES),
    ]
    assert all(run.success for run in other_runs)
    written, before = summary_writes(instance), summary.stat()
    assert teams_of(summary, "2021") == "20"  # the report still says what it said

    again = refresh(live_defs, instance, echo=lambda _: None)

    assert again.skipped is None
    assert summary_writes(instance) == written + 1
    assert summary.stat().st_ino != before.st_ino  # a new file replaced it
    assert teams_of(summary, "2021") == "21"


def test_tables_rebuilt_from_the_same_answers_leave_the_summary_alone(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)
    job = snapshot_defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=TABLES).success
    summary = output_dir / "summary.csv"
    written, before, content = summary_writes(instance), summary.stat(), summary.read_bytes()

    again = refresh(snapshot_defs, instance, echo=lambda _: None)

    assert again.skipped is not None
    assert summary_writes(instance) == written
    after = summary.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert summary.read_bytes() == content
