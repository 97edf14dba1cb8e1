"""Materialize the whole graph for every (or some) competitions, as runs in the user's instance.

Dagster cannot put an unpartitioned asset and a range of dynamic partitions that do not exist
yet into one run, and `raw_teams` reports its partitions itself, so a refresh is: (1) the
competition list, which registers the partitions; (2) the competitions' teams, one run per
contiguous range (a single-run backfill: one process, one HTTP session, one request budget);
(3) the tables and the report, unless their data and code versions say a rebuild would change
nothing (`staleness.py`). Each run is recorded in the instance like a UI run.

A refresh killed outright (SIGKILL, a closed laptop) cannot mark its run failed; the next one
finds such runs by the process they name and marks them failed, saying so.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from football_assets.assets.ingestion import PARTITIONS, RAW_TEAMS, raw_competitions
from football_assets.automation import contiguous_ranges
from football_assets.policies import API_RUN_TAGS
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets.staleness import (
    REPORT,
    WAREHOUSE_RUN,
    last_build_run,
    report_reasons,
    table_reasons,
)

# Which process ran a refresh run, so a later refresh can tell whether it died.
PID_TAG = "football/pid"
HOST_TAG = "football/host"
STARTED_TAG = "football/process_started"

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


class UnknownCompetitions(ValueError):
    """`--competition` named ids the instance does not know; nothing was run."""


@dataclass
class RefreshReport:
    run_ids: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the tables were not rebuilt; None when they were
    orphans: list[str] = field(default_factory=list)  # runs of dead refreshes marked failed
    changed: list[str] = field(default_factory=list)  # tables and report the refresh rewrote


def _process_tags() -> dict[str, str]:
    return {
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
        STARTED_TAG: str(_process_start(os.getpid())),
    }


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(tags: dict[str, str]) -> bool:
    try:
        pid = int(tags[PID_TAG])
        os.kill(pid, 0)
    except (KeyError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    return str(_process_start(pid)) == tags.get(STARTED_TAG)


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the started runs of refreshes on this host whose process is gone."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={HOST_TAG: socket.gethostname()},
        )
    )
    failed = []
    for record in records:
        run = record.dagster_run
        if _alive(dict(run.tags)):
            continue
        instance.report_run_failed(
            run,
            message=(
                f"The football-assets process that ran this run (pid {run.tags.get(PID_TAG)}) "
                "died without finishing it (killed or crashed); marked failed by the next "
                "refresh. Each table holds its previous or its new contents, never a mix."
            ),
        )
        failed.append(run.run_id)
    return failed


def failure_line(result: Any) -> str:
    """The first failed step and its innermost error: our own errors are one line already.
    When the step's retries ran out, the last attempt's cause, not "Exceeded max_retries"."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            exhausted = re.match(r"Exceeded max_retries of (\d+)", error.message or "")
            if exhausted and error.cause is not None:
                error = error.cause
            while error.cause is not None and error.cls_name in STEP_WRAPPERS:
                error = error.cause
            lines = (error.message or error.cls_name).strip().splitlines()
            message = lines[0] if lines else error.cls_name
            # Drop the exception's (module-qualified) class name: the message says it all.
            message = re.sub(rf"^([\w.]*\.)?{re.escape(error.cls_name)}: ", "", message)
            if exhausted:
                message += f" (gave up after {int(exhausted.group(1)) + 1} attempts)"
            return f"{event.step_key}: {message}"
    return "the run failed; see its logs in the Dagster UI"


def _run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: Sequence[dg.AssetKey],
    tags: dict[str, str],
    run_config: dict[str, Any] | None,
) -> str:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=list(selection),
        tags={**tags, **_process_tags()},
        run_config=run_config if run_config is not None else QUIET_CONSOLE,
        raise_on_error=False,
    )
    if not result.success:
        raise RefreshFailed(failure_line(result), result.run_id)
    return result.run_id


def _resource(defs: dg.Definitions, name: str) -> Any:
    return (defs.resources or {})[name]


def refresh(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run_config: dict[str, Any] | None = None,
    *,
    competitions: Sequence[str] | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
    on_phase: Callable[[str, dict[str, Any]], None] | None = None,
) -> RefreshReport:
    """Raw answers, then (unless they changed nothing, or `force`) the tables and the report.

    `competitions` refreshes only those competitions' teams (and what depends on them), keeping
    the competition list as stored; ids the instance does not know raise UnknownCompetitions
    before anything runs.
    """
    phase = on_phase or (lambda name, info: None)
    known = list(instance.get_dynamic_partitions(PARTITIONS))
    wanted: list[str] = []
    if competitions is not None:
        # Checked before anything is written, orphaned runs included: a typo changes nothing.
        wanted = list(dict.fromkeys(str(c) for c in competitions))
        unknown = [c for c in wanted if c not in known]
        if unknown:
            listing = ", ".join(known) or "none yet (run a full refresh first)"
            raise UnknownCompetitions(
                f"unknown competition id{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; known: {listing}"
            )
    report = RefreshReport(orphans=fail_orphaned_runs(instance))
    if competitions is not None:
        report.partitions = [k for k in known if k in set(wanted)]
    else:
        phase("competitions", {})
        report.run_ids.append(
            _run(defs, instance, [raw_competitions.key], API_RUN_TAGS, run_config)
        )
        report.partitions = list(instance.get_dynamic_partitions(PARTITIONS))
    order = list(instance.get_dynamic_partitions(PARTITIONS))
    phase("teams", {"total": len(report.partitions)})
    for first, last in contiguous_ranges(report.partitions, order):
        tags = {
            **API_RUN_TAGS,
            ASSET_PARTITION_RANGE_START_TAG: first,
            ASSET_PARTITION_RANGE_END_TAG: last,
        }
        report.run_ids.append(_run(defs, instance, [RAW_TEAMS.key], tags, run_config))
    phase("warehouse", {})
    # build_resources resolves EnvVar fields as a run would, with this instance (no throwaway
    # ephemeral one, which costs half a second).
    needed = {name: _resource(defs, name) for name in ("warehouse", "summary_output")}
    with dg.build_resources(needed, instance=instance) as resources:
        store, output = resources.warehouse, resources.summary_output
        assert isinstance(store, Warehouse) and isinstance(output, OutputLocation)
        tables = [] if force else table_reasons(store)
        report_stale = bool(report_reasons(instance, output))
        if not force and not tables and not report_stale:
            report.skipped = (
                f"skipped {', '.join(k.to_user_string() for k in WAREHOUSE_RUN)}: the raw "
                f"answers are unchanged since run {last_build_run(store) or '?'} built them "
                "(the inputs and code it recorded match), so a rebuild would change nothing"
            )
            echo(f"football-assets: {report.skipped}")
            return report
        started = time.monotonic()
        if force or tables:
            report.run_ids.append(_run(defs, instance, WAREHOUSE_RUN, {}, run_config))
            report.changed = _materialized(instance, report.run_ids[-1])
            # Dagster skips the report's step when either table it reads did not change: if
            # the other one did, the report is written in a run of its own.
            report_stale = bool(report_reasons(instance, output))
        if report_stale:
            report.run_ids.append(_run(defs, instance, [REPORT], {}, run_config))
            report.changed += _materialized(instance, report.run_ids[-1])
    if not report.changed:
        echo(
            "football-assets: nothing changed: the new answers hold the same rows; "
            "no table or report was written"
        )
    phase("done", {"warehouse_seconds": time.monotonic() - started})
    return report


def _materialized(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The assets a run materialized, by name."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    keys = [r.dagster_event.asset_key for r in records if r.dagster_event is not None]
    return [key.to_user_string() for key in dict.fromkeys(keys) if key is not None]
