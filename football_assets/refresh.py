"""Materialize the whole graph for every competition, as three runs in the user's instance.

Dagster cannot put an unpartitioned asset and a range of dynamic partitions that do not exist
yet into one run, so a full refresh is: (1) the competition list, which registers the
partitions, and the table that needs only it; (2) every competition's teams in one run (a
single-run backfill: one process, one HTTP session, one rate budget); (3) the tables that need
the teams, then the report. Each run is recorded in the instance like any UI run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from football_assets.assets.ingestion import competition_partitions

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


def refresh(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run_config: dict[str, Any] | None = None,
) -> RefreshReport:
    report = RefreshReport()
    report.run_ids.append(
        _run(defs, instance, ["raw_competitions", "dim_competitions"], None, run_config)
    )
    report.partitions = list(instance.get_dynamic_partitions(competition_partitions.name or ""))
    if report.partitions:
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: report.partitions[0],
            ASSET_PARTITION_RANGE_END_TAG: report.partitions[-1],
        }
        report.run_ids.append(_run(defs, instance, ["raw_teams"], tags, run_config))
    report.run_ids.append(
        _run(defs, instance, ["dim_teams", "fact_competitions", "summary_csv"], None, run_config)
    )
    return report
