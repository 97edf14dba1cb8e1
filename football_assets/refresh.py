"""`football-assets refresh` as runs in the user's instance: the competition list, the teams (a
run per contiguous range), then the tables and the report unless a rebuild would change nothing."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._core.errors import (
    DagsterAssetCheckFailedError,
    DagsterExecutionHandleOutputError,
    DagsterExecutionLoadInputError,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from football_assets.assets.ingestion import PARTITIONS, RAW_TEAMS, raw_competitions
from football_assets.assets.ingestion_checks import listed_competitions
from football_assets.automation import contiguous_ranges
from football_assets.competition_keys import UnknownCompetition, recorded_keys, resolve
from football_assets.policies import API_RUN_TAGS
from football_assets.progress import Fetched, Phase, RefreshObserver, Waiting
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets.run_owners import (  # noqa: F401  (re-exported: tests and the CLI)
    HOST_TAG,
    PID_TAG,
    STARTED_TAG,
    fail_orphaned_runs,
    process_tags,
)
from football_assets.staleness import (
    REPORT,
    WAREHOUSE_RUN,
    last_build_run,
    report_reasons,
    table_reasons,
)

# Dagster's wrappers around a step's own error: the error chain of a failure event is serialized
# (class names, no types), so the names are taken from the types themselves.
STEP_WRAPPERS = {
    error.__name__
    for error in (
        dg.DagsterExecutionStepExecutionError,
        DagsterExecutionHandleOutputError,
        DagsterExecutionLoadInputError,
        dg.DagsterResourceFunctionError,
        dg.DagsterUserCodeExecutionError,
    )
}
INTERRUPTS = {error.__name__ for error in (dg.DagsterExecutionInterruptedError, KeyboardInterrupt)}

QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


class RefreshFailed(Exception):
    """A run of the refresh failed; str() is the one line to show the user."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RefreshInterrupted(KeyboardInterrupt):
    """A run of the refresh ended on an interrupt (SIGINT, SIGTERM); it is recorded as failed."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class UnknownCompetitions(ValueError):
    """`--competition` named a competition the instance does not know; nothing was run."""


@dataclass
class RefreshReport:
    run_ids: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the tables were not rebuilt; None when they were
    orphans: list[str] = field(default_factory=list)  # runs of dead refreshes marked failed
    changed: list[str] = field(default_factory=list)  # tables and report the refresh rewrote


def failure(result: Any) -> tuple[str, str]:
    """(step, message) of the first failed step: its innermost error, our own errors being one
    line already; when the step's retries ran out, the last attempt's cause, not "Exceeded
    max_retries"."""
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
            if error.cls_name == DagsterAssetCheckFailedError.__name__:  # a step of checks:
                message = " ".join(lines)  # its next lines name the failed ones
            # Drop the exception's (module-qualified) class name: the message says it all.
            message = re.sub(rf"^([\w.]*\.)?{re.escape(error.cls_name)}: ", "", message)
            if exhausted:
                message += f" (gave up after {int(exhausted.group(1)) + 1} attempts)"
            return str(event.step_key), message
    return "the run", "it failed; see its logs in the Dagster UI"


def failure_line(result: Any) -> str:
    """The one line of a failed run: `step: message`."""
    return ": ".join(failure(result))


def interrupted(result: Any) -> bool:
    """Whether a run ended because it was interrupted (its step or the run itself)."""
    from dagster._core.execution.plan.objects import ErrorSource

    for event in result.all_events:
        data = event.event_specific_data
        if event.is_step_failure and data.error_source == ErrorSource.INTERRUPT:
            return True
        error = getattr(data, "error", None) if event.is_run_failure else None
        if error is not None and error.cls_name in INTERRUPTS:
            return True
    return False


def _run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: Sequence[dg.AssetKey],
    tags: dict[str, str],
    run_config: dict[str, Any] | None,
    checkpoint: Callable[[], None],
    observer: RefreshObserver,
) -> str:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=list(selection),
        tags={**tags, **process_tags()},
        run_config=run_config if run_config is not None else QUIET_CONSOLE,
        raise_on_error=False,
    )
    # A signal Dagster took while the run executed: stop here, whatever the run's outcome.
    checkpoint()
    if not result.success:
        if interrupted(result):
            raise RefreshInterrupted(result.run_id)
        step, message = failure(result)
        observer.failed(step, message)
        raise RefreshFailed(f"{step}: {message}", result.run_id)
    return result.run_id


class _Unobserved:
    """No one follows this refresh."""

    def phase(self, phase: Phase, total: int | None = None) -> None: ...

    def waiting(self, wait: Waiting) -> None: ...

    def fetched(self, fetched: Fetched) -> None: ...

    def skipped(self, reason: str) -> None: ...

    def failed(self, step: str, message: str) -> None: ...


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
    observer: RefreshObserver | None = None,
    checkpoint: Callable[[], None] = lambda: None,
) -> RefreshReport:
    """Raw answers, then (unless they changed nothing, or `force`) the tables and the report.

    `competitions` refreshes only those competitions' teams (and what depends on them), keeping
    the competition list as stored; each is a code (any case) or an id, and one the instance
    does not know raises UnknownCompetitions before anything runs. `observer` follows the
    phases, the skip and a failure (`echo` gets the skip's line too). `checkpoint` runs after
    each run and may raise to stop the refresh (the CLI's: a signal arrived); a run ended by an
    interrupt raises RefreshInterrupted.
    """
    watch: RefreshObserver = observer or _Unobserved()

    def run(selection: Sequence[dg.AssetKey], tags: dict[str, str]) -> str:
        return _run(defs, instance, selection, tags, run_config, checkpoint, watch)

    known = list(instance.get_dynamic_partitions(PARTITIONS))
    wanted: list[str] = []
    if competitions is not None:
        # Checked before anything is written, orphaned runs included: a typo changes nothing.
        wanted = _wanted(defs, instance, competitions, known)
    report = RefreshReport(orphans=fail_orphaned_runs(instance))
    if competitions is not None:
        report.partitions = [k for k in known if k in set(wanted)]
    else:
        watch.phase(Phase.COMPETITIONS)
        report.run_ids.append(run([raw_competitions.key], API_RUN_TAGS))
        report.partitions = list(instance.get_dynamic_partitions(PARTITIONS))
    order = list(instance.get_dynamic_partitions(PARTITIONS))
    watch.phase(Phase.TEAMS, total=len(report.partitions))
    for first, last in contiguous_ranges(report.partitions, order):
        tags = {
            **API_RUN_TAGS,
            ASSET_PARTITION_RANGE_START_TAG: first,
            ASSET_PARTITION_RANGE_END_TAG: last,
        }
        report.run_ids.append(run([RAW_TEAMS.key], tags))
    watch.phase(Phase.WAREHOUSE)
    # build_resources resolves EnvVar fields as a run would, with this instance (no throwaway
    # ephemeral one, which costs half a second).
    needed = {name: _resource(defs, name) for name in ("warehouse", "summary_output")}
    with dg.build_resources(needed, instance=instance) as resources:
        store, output = resources.warehouse, resources.summary_output
        assert isinstance(store, Warehouse) and isinstance(output, OutputLocation)
        tables = [] if force else table_reasons(store)
        # The report is judged only where the answer decides something: before the run when
        # the tables are current, after it unless the run wrote the report itself.
        report_stale = not (force or tables) and bool(report_reasons(instance, output))
        if not force and not tables and not report_stale:
            report.skipped = (
                f"skipped {', '.join(k.to_user_string() for k in WAREHOUSE_RUN)}: the raw "
                f"answers are unchanged since run {last_build_run(store) or '?'} built them "
                "(the inputs and code it recorded match), so a rebuild would change nothing"
            )
            echo(f"football-assets: {report.skipped}")
            watch.skipped(report.skipped)
            return report
        if force or tables:
            report.run_ids.append(run(WAREHOUSE_RUN, {}))
            report.changed = _materialized(instance, report.run_ids[-1])
            # Dagster skips the report's step when either table it reads did not change: if
            # the other one did, the report is written in a run of its own.
            wrote_report = REPORT.to_user_string() in report.changed
            report_stale = not wrote_report and bool(report_reasons(instance, output))
        if report_stale:
            report.run_ids.append(run([REPORT], {}))
            report.changed += _materialized(instance, report.run_ids[-1])
    if not report.changed:
        echo(
            "football-assets: nothing changed: the new answers hold the same rows; "
            "no table or report was written"
        )
    watch.phase(Phase.DONE)
    return report


def _wanted(
    defs: dg.Definitions, instance: dg.DagsterInstance, named: Sequence[str], known: list[str]
) -> list[str]:
    """The partition keys `--competition` names: keys (codes, any case) or competition ids,
    the ids mapped by the stored competition list (read only when a name is not a key)."""
    with contextlib.suppress(UnknownCompetition):
        return resolve(named, known, {})
    # The keys the last competition list registered, as raw_competitions recorded them; an
    # instance not refreshed since ids became codes has only the stored list itself.
    keys = recorded_keys(instance)
    if known and not keys:  # else nothing to name, and perhaps no warehouse yet
        needed = {"warehouse": _resource(defs, "warehouse")}
        with dg.build_resources(needed, instance=instance) as resources:
            keys, _ = listed_competitions(resources.warehouse)
    try:
        return resolve(named, known, keys)
    except UnknownCompetition as exc:
        raise UnknownCompetitions(str(exc)) from None


def _materialized(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The assets a run materialized, by name."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    keys = [r.dagster_event.asset_key for r in records if r.dagster_event is not None]
    return [key.to_user_string() for key in dict.fromkeys(keys) if key is not None]
