"""SIGINT and SIGTERM at each point of `football-assets refresh`: stop, never retry, one line.

Each point is reached as test_kill.py reaches it (a lock the refresh must wait on, or an answer
the API double keeps back), then the signal is sent: 130 for SIGINT, 143 for SIGTERM, one line
saying what was left, no run left STARTED, no step retried, the warehouse old or new as a whole.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._utils.interrupts import capture_interrupts

from football_assets.cli.stop import Stopped, stopping
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.test_kill import (
    Locker,
    after_the_commit,
    change_upstream,
    cli_env,
    locker,
    refresh_in_process,
    row_lock,
    while_fetching_teams,
)
from football_assets_tests.test_resilience import actual_tables, expected_tables
from test_support import refresh_process
from test_support.api_double import FootballApiDouble

WAITING = "waiting for another football-assets command to finish setting up the Dagster instance"
NOTHING_CHANGED = (
    "nothing changed: the warehouse tables and summary.csv keep their previous contents. "
    "Re-run to refresh."
)
COMMITTED = (
    "the warehouse was already committed (it holds the new tables); summary.csv holds its "
    "previous or its new version, never a part. Re-run to be sure it is the new one."
)


@dataclass(frozen=True)
class Point:
    name: str
    reach: Callable[[Locker, FootballApiDouble], None] | None  # None: the instance's lock
    line: str  # what the one line says after "interrupted (SIG...): "
    committed: bool


POINTS = [
    Point("before the first run", None, f"before the first run; {NOTHING_CHANGED}", False),
    Point(
        "while fetching",
        while_fetching_teams,
        f"while fetching the teams (10/13); {NOTHING_CHANGED}",  # 2021 is the 11th
        False,
    ),
    Point(
        "during the warehouse load",
        row_lock("dim_teams", "id = :t", t=57),
        f"while loading the warehouse; {NOTHING_CHANGED}",
        False,
    ),
    Point(
        "while writing the summary",
        after_the_commit,
        f"while checking the tables and writing the summary; {COMMITTED}",
        True,
    ),
]
CASES = [(point, signum) for point in POINTS for signum in (signal.SIGINT, signal.SIGTERM)]


def wait_for_line(
    process: refresh_process.subprocess.Popen[str], text: str, *, stderr: bool = False
) -> list[str]:
    """Read the process's stdout (or stderr) until a line contains `text` (each is flushed)."""
    stream = process.stderr if stderr else process.stdout
    assert stream is not None
    lines: list[str] = []
    while True:
        line = stream.readline()
        assert line, f"the refresh ended without printing {text!r}: {lines}"
        lines.append(line)
        if text in line:
            return lines


def runs_left_started(home: Path) -> list[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [
            run.run_id
            for run in instance.get_runs(
                dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
            )
        ]


def retries(home: Path) -> list[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [
            f"{record.dagster_run.run_id}: {event.dagster_event.step_key}"
            for record in instance.get_run_records()
            for event in instance.all_logs(record.dagster_run.run_id)
            if event.dagster_event is not None and event.dagster_event.is_step_up_for_retry
        ]


@pytest.mark.parametrize(
    ("point", "signum"),
    CASES,
    ids=[f"{p.name.replace(' ', '-')}-{signal.Signals(s).name}" for p, s in CASES],
)
def test_a_signal_stops_the_refresh_at_once_with_one_line_and_nothing_half_done(
    point: Point,
    signum: int,
    tmp_path: Path,
    api_double: FootballApiDouble,
    pg_url: str,
    schema: str,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    refresh_in_process(api_double, warehouse, pg_url, home, output_dir)
    previous = expected_tables(api_double.data)
    csv_before = (output_dir / "summary.csv").read_bytes()
    change_upstream(api_double.data)
    new = expected_tables(api_double.data)

    env = cli_env(home, api_double, pg_url, schema)
    with ExitStack() as stack:
        locks = stack.enter_context(locker(pg_url, schema))
        if point.reach is None:  # another command setting up the instance holds its lock
            folder = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
            stack.callback(os.close, folder)
            fcntl.flock(folder, fcntl.LOCK_EX)
        process = refresh_process.start("refresh", cwd=tmp_path, env=env)
        stack.callback(refresh_process.kill_group, process)
        if point.reach is None:
            wait_for_line(process, WAITING)
        else:
            point.reach(locks, api_double)
        result = refresh_process.interrupt(process, signum)

    name = signal.Signals(signum).name
    assert result.returncode == 128 + signum, result.stderr
    assert result.stderr.splitlines() == [f"football-assets: interrupted ({name}): {point.line}"]
    assert runs_left_started(home) == []
    assert retries(home) == []
    assert actual_tables(warehouse) == (new if point.committed else previous)
    assert (output_dir / "summary.csv").read_bytes() == csv_before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_status_with_one_line(
    signum: int, tmp_path: Path, pg_url: str, schema: str
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = refresh_process.user_env(
        DATABASE_URL=pg_url, FOOTBALL_DB_SCHEMA=schema, DAGSTER_HOME=str(home)
    )
    folder = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # another command is setting the instance up
        process = refresh_process.start("status", cwd=tmp_path, env=env)
        try:
            waited = wait_for_line(process, WAITING, stderr=True)
            result = refresh_process.interrupt(process, signum)
        finally:
            refresh_process.kill_group(process)
    finally:
        os.close(folder)

    name = signal.Signals(signum).name
    assert result.returncode == 128 + signum, result.stderr
    assert [*waited, *result.stderr.splitlines(keepends=True)] == [
        f"football-assets: {WAITING} in {home}\n",
        f"football-assets: interrupted ({name}): status changes nothing\n",
    ]
    assert result.stdout == ""


def test_a_signal_dagster_took_during_a_run_still_stops_the_command_after_it() -> None:
    # Inside a run Dagster's handler takes the signal (it only records it between steps); the
    # wake-up pipe still tells the command which signal came.
    with stopping() as stop:
        with capture_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler runs between two bytecodes of this thread
        with pytest.raises(Stopped) as stopped:
            stop.check()
    assert stopped.value.exit_code == 143
    assert stopped.value.line() == "interrupted (SIGTERM)"
    # Outside a run the signal stops the command where it is, and the handlers come back after.
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Stopped) as raised, stopping():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert raised.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is before
