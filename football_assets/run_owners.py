"""Which process ran a refresh run; the runs of refreshes that died are marked failed."""

from __future__ import annotations

import os
import socket

import dagster as dg

# Which process ran a refresh run, so a later refresh can tell whether it died.
PID_TAG = "football/pid"
HOST_TAG = "football/host"
STARTED_TAG = "football/process_started"


def process_tags() -> dict[str, str]:
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
