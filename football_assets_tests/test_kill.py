"""kill -9 of `football-assets refresh` at each point of a refresh, reached deterministically.

The test holds a lock (a row of a table, a whole table, or an answer the API double keeps back)
that the refresh must wait on, waits until PostgreSQL (or the double) shows the refresh waiting
on exactly that, and only then kills the refresh's process group: no sleep decides when the
kill lands. The data changes between the two refreshes so that any partial load would show: a
new competition, a competition that goes, a renamed competition and team, a team that leaves
the only competition it plays in (a DELETE in dim_teams, cascading to fact_competitions), and a
team that leaves one of two (a DELETE in fact_competitions alone). Whatever the point, the
three tables together hold exactly the previous state or exactly the new one, and summary.csv
the previous file; the next refresh marks the killed run failed and takes every change.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from football_assets.definitions import build_definitions
from football_assets.refresh import RefreshReport, refresh
from football_assets.resources.defaults import BUDGET_SCHEMA
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW, live_api
from football_assets_tests.test_resilience import (
    actual_tables,
    expected_summary,
    expected_tables,
    read_summary,
)
from test_support import refresh_process
from test_support.api_double import ApiData, Fault, FootballApiDouble, make_competition, make_team

WAIT_SECONDS = 120  # how long a refresh may take to reach the lock, at most

RENAMED_TEAM = 57  # Arsenal, in 2021 and 2001: an UPDATE in dim_teams
SOLE_LEAVER = 61  # plays in 2021 only: leaving it is a DELETE in dim_teams (and its pair)
PAIR_LEAVER = 58  # plays in 2021 and 2001, leaves 2021: a DELETE in fact_competitions only
RENAMED_COMPETITION = 2021  # an UPDATE in dim_competitions
GONE_COMPETITION = 2015  # a DELETE in dim_competitions, cascading to its pairs
NEW_COMPETITION = 9001  # an INSERT in dim_competitions, with a new team and a shared one
NEW_TEAM = 900101
SHARED_TEAM = 86  # already in 2014


def change_upstream(data: ApiData) -> None:
    """Every kind of change a load makes, so a partial load cannot pass for either state."""
    assert data.team_ids(2021) & data.team_ids(2001) >= {RENAMED_TEAM, PAIR_LEAVER}
    others = set().union(*(data.team_ids(c) for c in data.teams if c != 2021))
    assert SOLE_LEAVER in data.team_ids(2021) and SOLE_LEAVER not in others
    assert data.rename_team(RENAMED_TEAM, "Arsenal Renamed") == 2
    data.remove_team(2021, SOLE_LEAVER)
    data.remove_team(2021, PAIR_LEAVER)
    competition = data.competition(RENAMED_COMPETITION)
    assert competition is not None
    competition["name"] = "Premier League Renamed"
    data.remove_competition(GONE_COMPETITION)
    shared = next(t for t in data.teams[2014] if t["id"] == SHARED_TEAM)
    data.add_competition(
        make_competition(NEW_COMPETITION, "Liga Nueva", "LNU"),
        teams=[make_team(NEW_TEAM, "Club Nuevo"), shared],
    )


# ---- locks the refresh must wait on ---------------------------------------------------------


class Locker:
    """Connections that hold locks for a test, each in its own open transaction."""

    def __init__(self, pg_url: str, schema: str) -> None:
        self.schema = schema
        self.engine = sa.create_engine(pg_url)
        # Autocommit: within one transaction pg_stat_activity shows one snapshot forever.
        self.watcher = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        self._held: list[tuple[sa.Connection, Any]] = []

    def hold(self, statement: str, **params: Any) -> int:
        """Run `statement` in a new transaction kept open; return that backend's pid."""
        conn = self.engine.connect()
        transaction = conn.begin()
        conn.execute(sa.text(statement.replace("{schema}", f'"{self.schema}"')), params)
        self._held.append((conn, transaction))
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    def hold_in_background(self, statement: str) -> tuple[int, threading.Thread]:
        """Like hold(), for a lock that must queue behind someone else's: (pid, thread)."""
        conn = self.engine.connect()
        transaction = conn.begin()
        pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        self._held.append((conn, transaction))
        text = sa.text(statement.replace("{schema}", f'"{self.schema}"'))
        thread = threading.Thread(target=conn.execute, args=(text,), daemon=True)
        thread.start()
        return pid, thread

    def release(self, pid: int) -> None:
        for conn, transaction in list(self._held):
            if int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()) == pid:
                transaction.rollback()
                conn.close()
                self._held.remove((conn, transaction))

    def blocked_by(self, pid: int) -> int:
        """The pid of a backend waiting for a lock `pid` holds, once there is one."""
        deadline = time.monotonic() + WAIT_SECONDS
        with self.watcher.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                    ),
                    {"pid": pid},
                ).scalar()
                if waiting is not None:
                    return int(waiting)
                time.sleep(0.02)
        raise AssertionError(f"nothing waited on the lock of backend {pid}")

    def close(self) -> None:
        for conn, transaction in self._held:
            if transaction.is_active:
                transaction.rollback()
            conn.close()
        self._held.clear()
        self.engine.dispose()
        self.watcher.dispose()


def held_request(double: FootballApiDouble, path: str) -> None:
    """Return once the double holds a request to `path` without answering it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if any(r.path == f"/v4{path}" and r.status is None for r in list(double.requests)):
            return
        time.sleep(0.02)
    raise AssertionError(f"no request to {path} arrived")


# ---- the points -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    """Where the refresh is stopped, and which state the warehouse must then be in."""

    name: str
    reach: Callable[[Locker, FootballApiDouble], None]  # returns once the refresh waits there
    committed: bool  # the warehouse load committed before the kill
    rerun_by_cli: bool = False  # else in this process: the same code, without a start-up


def while_fetching_teams(locks: Locker, double: FootballApiDouble) -> None:
    # The competition list (with the new competition, without the gone one) is stored by now.
    double.inject(r"/competitions/2021/teams$", Fault.delay(WAIT_SECONDS * 2))
    held_request(double, "/competitions/2021/teams")


def while_storing_raw_teams(locks: Locker, double: FootballApiDouble) -> None:
    # The run's first answer is kept back while raw_responses is locked against writes (SHARE
    # mode still lets the load read; the competition list is stored by then), so the run stops
    # exactly when it stores its answers, a dozen requests later.
    double.inject(r"/competitions/2000/teams$", Fault.delay(5))
    held_request(double, "/competitions/2000/teams")
    locks.blocked_by(locks.hold("LOCK TABLE {schema}.raw_responses IN SHARE MODE"))


def row_lock(table: str, where: str, **params: Any) -> Callable[[Locker, FootballApiDouble], None]:
    def reach(locks: Locker, double: FootballApiDouble) -> None:
        pid = locks.hold(f"SELECT 1 FROM {{schema}}.{table} WHERE {where} FOR UPDATE", **params)
        locks.blocked_by(pid)

    return reach


def after_the_commit(locks: Locker, double: FootballApiDouble) -> None:
    # Stop the load at its last table, queue an ACCESS EXCLUSIVE lock on dim_competitions
    # behind it, let the load commit: the lock is granted then, so the checks and the summary
    # that read the table next wait on it, after the commit and before the CSV is written.
    row = locks.hold(
        "SELECT 1 FROM {schema}.fact_competitions WHERE competition_id = 2021 AND team_id = :t "
        "FOR UPDATE",
        t=PAIR_LEAVER,
    )
    loader = locks.blocked_by(row)
    exclusive, granted = locks.hold_in_background(
        "LOCK TABLE {schema}.dim_competitions IN ACCESS EXCLUSIVE MODE"
    )
    assert locks.blocked_by(loader) == exclusive
    locks.release(row)
    granted.join(timeout=WAIT_SECONDS)
    assert not granted.is_alive()
    locks.blocked_by(exclusive)


POINTS = [
    KillPoint("while fetching the teams", while_fetching_teams, committed=False),
    KillPoint("while storing the raw answers", while_storing_raw_teams, committed=False),
    KillPoint(
        "while loading dim_competitions",
        row_lock("dim_competitions", "id = :c", c=RENAMED_COMPETITION),
        committed=False,
    ),
    KillPoint(
        "while loading dim_teams",
        row_lock("dim_teams", "id = :t", t=RENAMED_TEAM),
        committed=False,
        rerun_by_cli=True,
    ),
    KillPoint(
        "while loading fact_competitions",
        row_lock("fact_competitions", "competition_id = 2021 AND team_id = :t", t=PAIR_LEAVER),
        committed=False,
    ),
    KillPoint(
        "after the commit, before the summary", after_the_commit, committed=True, rerun_by_cli=True
    ),
]


@contextmanager
def locker(pg_url: str, schema: str) -> Iterator[Locker]:
    locks = Locker(pg_url, schema)
    try:
        yield locks
    finally:
        locks.close()


def refresh_in_process(
    double: FootballApiDouble, warehouse: Warehouse, pg_url: str, home: Path, output_dir: Path
) -> RefreshReport:
    """A refresh as the CLI's, in this process (quicker): its instance, its request budget."""
    api = live_api(
        double,
        home,
        budget_state_dir=None,
        budget_database_url=pg_url,
        budget_schema=BUDGET_SCHEMA,  # as the CLI has it
    )
    defs = build_definitions(api, warehouse, OutputLocation(location=str(output_dir)))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return refresh(defs, instance)


def cli_env(home: Path, double: FootballApiDouble, pg_url: str, schema: str) -> dict[str, str]:
    """`football-assets` on the double, into the test's schema, with `home` as DAGSTER_HOME."""
    return refresh_process.live_env(
        home,
        double.base_url,
        TEST_KEY,
        pg_url,
        schema,
        limit=TEST_LIMIT,
        window_seconds=TEST_WINDOW,
        output_dir=Path(os.environ["FOOTBALL_OUTPUT_DIR"]),
    )


@pytest.mark.parametrize("point", POINTS, ids=[p.name.replace(" ", "-") for p in POINTS])
def test_sigkill_leaves_the_previous_or_the_new_warehouse_never_a_mix(
    point: KillPoint,
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
    assert actual_tables(warehouse) == previous
    csv_before = (output_dir / "summary.csv").read_bytes()

    change_upstream(api_double.data)
    new = expected_tables(api_double.data)
    assert all(previous[name] != new[name] for name in new)  # each table would change

    env = cli_env(home, api_double, pg_url, schema)
    with ExitStack() as stack:
        locks = stack.enter_context(locker(pg_url, schema))
        killed = refresh_process.start("refresh", cwd=tmp_path, env=env)
        stack.callback(refresh_process.kill_group, killed)
        point.reach(locks, api_double)
        refresh_process.kill_group(killed)
    assert killed.returncode == -signal.SIGKILL

    assert actual_tables(warehouse) == (new if point.committed else previous)
    assert (output_dir / "summary.csv").read_bytes() == csv_before

    # The next refresh marks the dead run failed, then takes every change.
    api_double.clear_faults()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (dead,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    if point.rerun_by_cli:
        rerun = refresh_process.run("refresh", cwd=tmp_path, env=env)
        assert rerun.returncode == 0, rerun.stderr
    else:
        report = refresh_in_process(api_double, warehouse, pg_url, home, output_dir)
        assert report.orphans == [dead.run_id]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(dead.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        failures = [
            event.message
            for event in instance.all_logs(dead.run_id)
            if event.dagster_event is not None and event.dagster_event.is_run_failure
        ]
    assert len(failures) == 1 and "died without finishing it (killed or crashed)" in failures[0]
    assert f"pid {killed.pid}" in failures[0]
    assert actual_tables(warehouse) == new
    assert read_summary(output_dir) == expected_summary(api_double.data)
