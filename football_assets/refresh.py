"""Materialize the whole graph for every competition, as three runs in the user's instance.

Dagster cannot put an unpartitioned asset and a range of dynamic partitions that do not exist
yet into one run, so a full refresh is: (1) the competition list, which registers the
partitions; (2) every competition's teams in one run (a single-run backfill: one process, one
HTTP session, one rate budget), started straight after, so the API phase is requests and
nothing else; (3) the tables and the report. Each run is recorded in the instance like any UI
run.

Run 3 is skipped when it would rebuild what is already there: when the data versions of the
raw answers it reads (each payload's SHA-256), the code that builds the tables and where they
go are all the same as for the last run 3 that built every table and the report, and nothing
rebuilt or emptied them since.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from football_assets import settings
from football_assets.assets.ingestion import competition_partitions
from football_assets.resources.io_manager import UNPARTITIONED
from football_assets.resources.warehouse import WAREHOUSE_TABLES, Warehouse

WAREHOUSE_ASSETS = ["dim_competitions", "dim_teams", "fact_competitions", "summary_csv"]
# Run 3's tag: the version of everything it reads, so a later refresh can tell it is current.
INPUTS_TAG = "football_assets/warehouse_inputs"
# The code that turns raw answers into the tables and the report: a change rebuilds them.
BUILD_MODULES = [
    "football_assets.transforms",
    "football_assets.assets.warehouse",
    "football_assets.assets.reporting",
    "football_assets.resources.warehouse",
]

STEP_WRAPPERS = {
    "DagsterExecutionStepExecutionError",
    "DagsterExecutionHandleOutputError",
    "DagsterExecutionLoadInputError",
    "DagsterResourceFunctionError",
    "DagsterUserCodeExecutionError",
}

QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class RefreshFailed(Exception):
    """A run of the refresh failed; str() is the one line to show the user."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass
class RefreshReport:
    run_ids: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    inputs_version: str | None = None
    skipped: str | None = None  # why the tables were not rebuilt; None when they were


def failure_line(result: Any) -> str:
    """The first failed step and its innermost error: our own errors are one line already."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error.cause is not None and error.cls_name in STEP_WRAPPERS:
                error = error.cause
            lines = (error.message or error.cls_name).strip().splitlines()
            message = lines[0] if lines else error.cls_name
            # Drop the exception's (module-qualified) class name: the message says it all.
            message = re.sub(rf"^([\w.]*\.)?{re.escape(error.cls_name)}: ", "", message)
            return f"{event.step_key}: {message}"
    return "the run failed; see its logs in the Dagster UI"


def _run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: list[str],
    tags: dict[str, str] | None = None,
    run_config: dict[str, Any] | None = None,
) -> str:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(key) for key in selection],
        tags=tags or {},
        run_config=run_config if run_config is not None else QUIET_CONSOLE,
        raise_on_error=False,
    )
    if not result.success:
        raise RefreshFailed(failure_line(result), result.run_id)
    return result.run_id


def _code_version() -> str:
    digest = hashlib.sha256()
    for name in BUILD_MODULES:
        digest.update(Path(importlib.import_module(name).__file__ or "").read_bytes())
    return digest.hexdigest()


def warehouse_inputs_version(
    warehouse: Warehouse, partitions: list[str], run_config: dict[str, Any] | None
) -> str:
    """What run 3 reads, as one hash: raw data versions, build code, destination."""
    inputs = {
        "raw_competitions": warehouse.latest_raw_sha256("raw_competitions", [UNPARTITIONED]),
        "raw_teams": warehouse.latest_raw_sha256("raw_teams", partitions),
        "code": _code_version(),
        "warehouse": [warehouse.describe(), warehouse.schema],
        "output_dir": str(settings.output_dir()),
        "run_config": run_config,
    }
    canonical = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _current_build(instance: dg.DagsterInstance, warehouse: Warehouse, version: str) -> str | None:
    """The run that built every table and the report from exactly `version`, if they are
    still its work: nothing materialized them since, and the tables hold what it loaded."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={INPUTS_TAG: version}, statuses=[dg.DagsterRunStatus.SUCCESS]),
        limit=1,
    )
    if not records:
        return None
    run_id = records[0].dagster_run.run_id
    for name in WAREHOUSE_ASSETS:
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        if event is None or event.run_id != run_id or event.asset_materialization is None:
            return None
        metadata = event.asset_materialization.metadata
        if name in WAREHOUSE_TABLES:
            loaded = metadata.get("dagster/row_count")
            if loaded is None or loaded.value != warehouse.count_rows(name):
                return None
        path = metadata.get("path")
        if path is not None and not Path(str(path.value)).exists():
            return None
    return run_id


def refresh(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run_config: dict[str, Any] | None = None,
    *,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> RefreshReport:
    """Raw answers, then (unless they changed nothing, or `force`) the tables and the report."""
    report = RefreshReport()
    report.run_ids.append(_run(defs, instance, ["raw_competitions"], None, run_config))
    report.partitions = list(instance.get_dynamic_partitions(competition_partitions.name or ""))
    if report.partitions:
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: report.partitions[0],
            ASSET_PARTITION_RANGE_END_TAG: report.partitions[-1],
        }
        report.run_ids.append(_run(defs, instance, ["raw_teams"], tags, run_config))
    # Outside a run, EnvVar fields are unresolved; this gives the resource as a run sees it.
    with (defs.resources or {})["warehouse"].process_config_and_initialize_cm() as warehouse:
        report.inputs_version = warehouse_inputs_version(warehouse, report.partitions, run_config)
        built_by = None if force else _current_build(instance, warehouse, report.inputs_version)
    if built_by is not None:
        report.skipped = (
            f"skipped {', '.join(WAREHOUSE_ASSETS)}: the raw data is unchanged since run "
            f"{built_by} built them (inputs version {report.inputs_version[:12]}), so they "
            "hold what a rebuild would write."
        )
        echo(f"football-assets: {report.skipped}")
        return report
    report.run_ids.append(
        _run(defs, instance, WAREHOUSE_ASSETS, {INPUTS_TAG: report.inputs_version}, run_config)
    )
    return report
