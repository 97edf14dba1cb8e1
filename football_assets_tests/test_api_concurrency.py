"""One run calling football-data.org at a time in a deployment, whoever launched it.

The limit is the `football_api` concurrency pool at run granularity in the instance config
(deploy/dagster.yaml, deploy/aws/dagster.yaml), not a run tag, which runs launched from the UI
or by a backfill do not carry. Both files go through Dagster's own instance-config validation,
then the run queue's own counter (what the daemon consults before dequeuing a run) is asked
about runs created as the UI creates them: no tags at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._core.op_concurrency_limits_counter import GlobalOpConcurrencyLimitsCounter
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from football_assets.definitions import build_definitions
from football_assets.policies import API_POOL
from football_assets.resources.api import SnapshotFootballDataApi
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
INSTANCE_FILES = [ROOT / "deploy" / "dagster.yaml", ROOT / "deploy" / "aws" / "dagster.yaml"]


def validated(path: Path, home: Path) -> dict[str, Any]:
    """The file as Dagster reads it from DAGSTER_HOME, after its own schema validation."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    return dict(config)


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_api_pool_holds_whole_runs(path: Path, tmp_path: Path) -> None:
    config = validated(path, tmp_path / "home")
    assert config["concurrency"]["pools"]["granularity"] == "run"
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


@pytest.fixture
def deployment_like(tmp_path: Path) -> Any:
    """An instance with deploy/dagster.yaml's run queue and concurrency sections (storage on
    SQLite: what decides which run may start is the same)."""
    shipped = yaml.safe_load(INSTANCE_FILES[0].read_text(encoding="utf-8"))
    overrides = {key: shipped[key] for key in ("run_coordinator", "concurrency")}
    home = tmp_path / "home"
    home.mkdir()
    with dg.instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
        yield instance


# What the queue holds. A run stored as QUEUED needs a code location's origin, which a test
# without a code server lacks; the counter reads only what a run contains, not its status.
WAITING = dg.DagsterRunStatus.NOT_STARTED


def blocked(instance: dg.DagsterInstance, queued: list[dg.DagsterRun]) -> dict[str, bool]:
    """Which queued runs the daemon would hold back, asked as its dequeue pass asks: in queue
    order, each run it would launch counting against the ones after it."""
    config = instance.get_concurrency_config()
    in_progress = instance.get_run_records(
        filters=dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES))
    )
    verdicts: dict[str, bool] = {}
    # Twice, as on two daemon ticks: the first pass creates the pool's default limit.
    for _ in range(2):
        counter = GlobalOpConcurrencyLimitsCounter(
            instance,
            queued,
            in_progress,
            concurrency_keys=instance.event_log_storage.get_concurrency_keys(),
            pool_limits=instance.event_log_storage.get_pool_limits(),
            pool_granularity=config.pool_config.pool_granularity,
        )
        verdicts = {}
        for run in queued:
            verdicts[run.run_id] = counter.is_blocked(run)
            if not verdicts[run.run_id]:
                counter.update_counters_with_launched_item(run)
    return verdicts


def test_a_run_from_the_ui_with_a_raw_asset_waits_for_the_api_run_in_progress(
    deployment_like: dg.DagsterInstance, tmp_path: Path
) -> None:
    defs = build_definitions(
        SnapshotFootballDataApi(),
        Warehouse(database_url="postgresql://unused@127.0.0.1:1/unused"),
        OutputLocation(location=str(tmp_path / "output")),
    )
    job = defs.resolve_implicit_global_asset_job_def()
    instance = deployment_like

    def run(*assets: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
        selection = {dg.AssetKey(name) for name in assets}
        return instance.create_run_for_job(
            job_def=job.get_subset(asset_selection=selection),
            asset_selection=selection,
            status=status,
            tags={},  # as the UI launches it: no football/api tag
        )

    api_run = run("raw_competitions", status=dg.DagsterRunStatus.STARTED)
    assert api_run.run_op_concurrency is not None
    assert api_run.run_op_concurrency.all_pools == {API_POOL}
    teams = run("raw_teams", status=WAITING)
    everything = run(
        "raw_competitions",
        "raw_teams",
        "dim_competitions",
        "dim_teams",
        "fact_competitions",
        "dim_teams_history",
        "competition_membership_history",
        "summary_csv",
        status=WAITING,
    )
    tables = run(
        "dim_competitions",
        "dim_teams",
        "fact_competitions",
        "dim_teams_history",
        "competition_membership_history",
        "summary_csv",
        status=WAITING,
    )

    verdicts = blocked(instance, [teams, everything, tables])
    assert verdicts == {teams.run_id: True, everything.run_id: True, tables.run_id: False}

    instance.report_run_failed(api_run)  # the API run ends: the next one (only) may start
    verdicts = blocked(instance, [teams, everything, tables])
    assert verdicts == {teams.run_id: False, everything.run_id: True, tables.run_id: False}
