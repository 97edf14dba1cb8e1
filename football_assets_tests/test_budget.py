"""The request budget is one per API key: shared by threads, by processes whatever their
DAGSTER_HOME, by hosts through PostgreSQL, and with the server's own word.

Windows are the API's minute scaled down to TEST_WINDOW seconds. The double counts what it
admitted at arrival; `max_requests_in_any_window` is a sliding window, stricter than the
server's fixed one, so passing it means no fixed window was ever over the limit either.

Cross-process tests run this module as a child (`python -m football_assets_tests.test_budget`),
told what to do on stdin and started on cue, so the processes really compete.
"""

from __future__ import annotations

import gc
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql

from football_assets.resources.budget import (
    RequestBudget,
    budget_file,
    open_budget,
    safety_margin,
)
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW
from test_support.api_double import FootballApiDouble, rate_limited

pytestmark = pytest.mark.rate_limit  # the api_double fixture at TEST_LIMIT per TEST_WINDOW

ROOT = Path(__file__).resolve().parents[1]  # children import this module and test_support
OTHER_KEY = "other-key-2b8d4f6a1c"
API = {"base_url": "http://127.0.0.1:9/v4", "api_key": TEST_KEY}  # an API no test talks to


class Client:
    """What the API client does around each request (its get and _get_once), on a budget
    of this module: spend (the server's word and a slot), then the request."""

    def __init__(self, budget: RequestBudget, base_url: str, *, retry: bool = True) -> None:
        self.budget, self.base_url, self.retry = budget, base_url, retry
        self.session = requests.Session()
        self.session.headers["X-Auth-Token"] = TEST_KEY
        self.refused = 0

    def get(self, endpoint: str) -> requests.Response:
        while True:
            self.budget.spend()
            sent_at = time.time()
            response = self.session.get(f"{self.base_url}{endpoint}", timeout=10)
            available = response.headers.get("X-Requests-Available-Minute")
            reset = response.headers.get("X-RequestCounter-Reset")
            if response.status_code != 429:
                self.budget.server_said(
                    sent_at, int(available) if available else None, int(reset) if reset else None
                )
                return response
            self.refused += 1
            wait = float(reset) if reset else self.budget.window_seconds
            self.budget.server_said(sent_at, 0, wait)  # every process holds off, not only this
            if not self.retry:
                return response  # else the next spend() waits it out

    def teams(self, competition: str) -> int:
        response = self.get(f"/competitions/{competition}/teams")
        response.raise_for_status()
        return len(response.json()["teams"])


def budget(where: dict[str, Any], **overrides: Any) -> RequestBudget:
    """open_budget() with the test's limit and window, in `where` (a state dir or a database)."""
    kwargs: dict[str, Any] = {
        **API,
        "limit": TEST_LIMIT,
        "window_seconds": TEST_WINDOW,
        **where,
        **overrides,
    }
    if kwargs.get("state_dir") is not None:
        kwargs["state_dir"] = Path(kwargs["state_dir"])
    return open_budget(**kwargs)


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Where the budget lives: a per-user state folder, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return {"state_dir": str(tmp_path / "state")}
    pg_url: str = request.getfixturevalue("pg_url")
    return {"database_url": pg_url, "schema": request.getfixturevalue("schema")}


@pytest.fixture
def frozen_heap() -> Iterator[None]:
    """A full collection of this process's heap (Dagster's, ~150k objects) takes ~150 ms: more
    than a 1 s window's 0.1 s margin, and to the double, in this same process, it looks like a
    request held on its way. Frozen, the heap is no longer scanned."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def team_counts(double: FootballApiDouble) -> dict[str, int]:
    return {str(cid): len(teams) for cid, teams in double.data.teams.items()}


# ---- children ----------------------------------------------------------------------------


def child_main() -> None:
    """A process spending a budget: its config on the first line of stdin, then "go"."""
    config = json.loads(sys.stdin.readline())
    spender = budget(config["where"], **config.get("budget", {}))
    gc.collect()
    gc.freeze()  # see frozen_heap
    print("ready", flush=True)
    sys.stdin.readline()
    results: list[Any] = []
    for step, *args in config["steps"]:
        if step == "acquire":  # when it set out, and when it took each slot (wall clock)
            print("acquiring", flush=True)
            started = time.time()
            slots = [(spender.spend(), time.time())[1] for _ in range(args[0])]
            results.append({"from": started, "at": slots})
        elif step == "teams":
            client = Client(spender, config["base_url"])
            counts = {key: client.teams(key) for key in args[0]}
            results.append({"counts": counts, "refused": client.refused})
        elif step == "get_once":
            client = Client(spender, config["base_url"], retry=False)
            results.append(client.get(args[0]).status_code)
        elif step == "server_said":
            spender.server_said(time.time(), args[0], args[1])
        elif step == "take":  # what it would wait for, taking nothing then
            results.append(spender.take().seconds)
    spender.close()
    print(json.dumps(results), flush=True)


def _line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"child {process.pid} said nothing within {timeout:g} s"
    return process.stdout.readline().strip()


@contextmanager
def children(configs: list[dict[str, Any]], tmp_path: Path) -> Iterator[list[Any]]:
    """Start one child per config, each with a DAGSTER_HOME and XDG_STATE_HOME of its own and
    in its own process group; yield them once all are ready for `go`. Leaves none running."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for index, config in enumerate(configs):
            home = tmp_path / f"child{index}"
            (home / "dagster_home").mkdir(parents=True, exist_ok=True)
            env = {
                **os.environ,
                "DAGSTER_HOME": str(home / "dagster_home"),
                "XDG_STATE_HOME": str(home / "state"),
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "football_assets_tests.test_budget"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                process_group=0,
            )
            processes.append(process)
            assert process.stdin is not None
            process.stdin.write(json.dumps(config) + "\n")
            process.stdin.flush()
        for process in processes:
            assert _line(process, 60) == "ready"
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def go(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.close()


def results_of(processes: list[subprocess.Popen[str]], timeout: float = 60) -> list[Any]:
    outputs = []
    for process in processes:
        process.wait(timeout=timeout)
        assert process.stdout is not None
        outputs.append(process.stdout.read())
    assert [process.returncode for process in processes] == [0] * len(processes)
    return [json.loads(output.splitlines()[-1]) for output in outputs]


def run_children(configs: list[dict[str, Any]], tmp_path: Path) -> list[Any]:
    with children(configs, tmp_path) as processes:
        go(processes)
        return results_of(processes)


def separate(where: dict[str, Any], tmp_path: Path, index: int) -> dict[str, Any]:
    """`where` for one of several processes: PostgreSQL ones share no folder at all."""
    if "database_url" in where:
        return {**where, "state_dir": str(tmp_path / f"own-state-{index}")}
    return where


# ---- across processes --------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_share_one_budget(
    api_double: FootballApiDouble, where: dict[str, Any], tmp_path: Path
) -> None:
    """Different DAGSTER_HOMEs, and for PostgreSQL no shared files: still one budget."""
    keys = sorted(team_counts(api_double), key=int)
    halves = [keys, list(reversed(keys))]  # 26 requests for a budget of 10 per window
    configs = [
        {
            "where": separate(where, tmp_path, index),
            "budget": {"base_url": api_double.base_url},
            "base_url": api_double.base_url,
            "steps": [["teams", half]],
        }
        for index, half in enumerate(halves)
    ]
    results = run_children(configs, tmp_path)

    expected = team_counts(api_double)
    for [result], half in zip(results, halves, strict=True):
        assert result == {"counts": {key: expected[key] for key in half}, "refused": 0}
    assert api_double.count() == 2 * len(keys)  # nothing refused, nothing retried
    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


@contextmanager
def inserts_blocked(where: dict[str, Any]) -> Iterator[Callable[[], None]]:
    """Hold off every write to the budget's log (reads go on), until the yielded callable
    says both children are stuck; then let them go."""
    if "database_url" in where:
        url = where["database_url"].replace("+psycopg", "")
        with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as watcher:
            table = sql.Identifier(where["schema"], "budget_log")
            blocker.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(table))

            def wait_for_both() -> None:
                deadline = time.monotonic() + 30
                waiting = "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted"
                while watcher.execute(waiting).fetchone() != (2,):
                    assert time.monotonic() < deadline, "the children never reached the log"
                    time.sleep(0.01)

            yield wait_for_both
            blocker.rollback()
    else:
        path = budget_file(Path(where["state_dir"]), **API)
        with closing(sqlite3.connect(path, isolation_level=None)) as writer:
            # WAL, as the budget leaves its file (and a budget without its file lock would
            # not): readers go on past the write lock held here, so both children see room.
            writer.execute("PRAGMA journal_mode=WAL")
            writer.execute("BEGIN IMMEDIATE")
            # No way to watch SQLite's waiters: each child needs milliseconds to get stuck,
            # and its busy timeout (5 s) outlasts this.
            yield lambda: time.sleep(1.0)
            writer.execute("ROLLBACK")


@pytest.mark.slow
def test_two_processes_cannot_both_take_the_last_slot(
    where: dict[str, Any], tmp_path: Path
) -> None:
    """Both children see a free slot while writes are held off; only one may then take it.

    Certain, not a matter of timing: without the lock that makes check-and-insert one step
    (the file lock, the advisory lock, one budget for both), both read "room" and both write.
    Slots are read as the log records them: a child held at the lock returns later than its
    slot (by what the margin covers).
    """
    config = {"where": where, "budget": {"limit": 1}, "steps": [["acquire", 1]]}
    with children([config, config], tmp_path) as processes:  # ready: the log exists
        slots = recording_slots(where)
        with inserts_blocked(where) as wait_for_both:
            go(processes)
            assert [_line(process, 30) for process in processes] == ["acquiring"] * 2
            wait_for_both()
        results_of(processes)
    first, second = slots()
    assert second - first >= TEST_WINDOW


def recording_slots(where: dict[str, Any]) -> Callable[[], list[float]]:
    """A trigger copying every slot the log gets (of any budget, in PostgreSQL) to a table
    no one cleans up; returns how to read them, in epoch seconds."""
    if "database_url" in where:
        url, schema = where["database_url"].replace("+psycopg", ""), where["schema"]
        ddl = """
            CREATE TABLE {schema}.slots (stamp FLOAT8);
            CREATE FUNCTION {schema}.keep_slot() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN INSERT INTO {schema}.slots VALUES (NEW.stamp); RETURN NULL; END $$;
            CREATE TRIGGER keep_slot AFTER INSERT ON {schema}.budget_log
                FOR EACH ROW EXECUTE FUNCTION {schema}.keep_slot()"""
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL(ddl).format(schema=sql.Identifier(schema)))

        def read() -> list[float]:
            with psycopg.connect(url) as conn:
                query = sql.SQL("SELECT stamp FROM {}.slots ORDER BY 1").format(
                    sql.Identifier(schema)
                )
                return [stamp for (stamp,) in conn.execute(query)]

        return read
    path = budget_file(Path(where["state_dir"]), **API)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(
            """CREATE TABLE slots (stamp REAL);
            CREATE TRIGGER keep_slot AFTER INSERT ON budget_log
                BEGIN INSERT INTO slots VALUES (NEW.stamp); END;"""
        )

    def read_file() -> list[float]:
        with closing(sqlite3.connect(path)) as db:
            return [stamp for (stamp,) in db.execute("SELECT stamp FROM slots ORDER BY 1")]

    return read_file


@pytest.mark.slow
def test_a_429_heard_by_one_process_holds_off_the_others(
    api_double: FootballApiDouble, where: dict[str, Any], tmp_path: Path
) -> None:
    api_double.inject(r"/teams$", rate_limited(10))  # the server says: wait 10 s
    started = time.time()
    heard = {
        "where": separate(where, tmp_path, 0),
        "budget": {"base_url": api_double.base_url},
        "base_url": api_double.base_url,
        "steps": [["get_once", "/competitions/2021/teams"]],
    }
    assert run_children([heard], tmp_path) == [[429]]
    asks = {**heard, "where": separate(where, tmp_path, 1), "steps": [["take"]]}
    [[wait]] = run_children([asks], tmp_path)
    # What remains of the 10 s when it asked: each child takes a few seconds to start.
    assert started + 10 - time.time() < wait <= 10 + safety_margin(TEST_WINDOW)


@pytest.mark.slow
def test_the_servers_zero_reaches_every_process(where: dict[str, Any], tmp_path: Path) -> None:
    started = time.time()
    said = {"where": separate(where, tmp_path, 0), "steps": [["server_said", 0, 10.0]]}
    run_children([said], tmp_path)
    asks = {"where": separate(where, tmp_path, 1), "steps": [["take"], ["take"]]}
    [[first, second]] = run_children([asks], tmp_path)
    assert started + 10 - time.time() < second <= first <= 10 + safety_margin(TEST_WINDOW)


@pytest.mark.slow
def test_other_keys_and_other_apis_have_budgets_of_their_own(
    where: dict[str, Any], tmp_path: Path
) -> None:
    """Three processes each take a whole window's budget at once: none waits. Were it one
    budget, the 30 slots would span two windows and someone would wait them out."""
    apis = [API, {**API, "api_key": OTHER_KEY}, {**API, "base_url": "http://127.0.0.1:10/v4"}]
    configs = [
        {"where": separate(where, tmp_path, i), "budget": api, "steps": [["acquire", TEST_LIMIT]]}
        for i, api in enumerate(apis)
    ]
    results = run_children(configs, tmp_path)

    for [slots] in results:
        assert slots["at"][-1] - slots["from"] < TEST_WINDOW / 2
    if "database_url" not in where:
        files = {budget_file(Path(where["state_dir"]), **api) for api in apis}
        assert len(files) == 3 and all(path.exists() for path in files)


# ---- within a process --------------------------------------------------------------------


@pytest.mark.usefixtures("frozen_heap")
def test_threads_of_one_client_share_its_budget(
    api_double: FootballApiDouble, where: dict[str, Any]
) -> None:
    spender = budget(where, base_url=api_double.base_url)
    client = Client(spender, api_double.base_url)
    keys = sorted(team_counts(api_double), key=int) * 2
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            counts = list(pool.map(client.teams, keys))
    finally:
        spender.close()

    assert counts == [team_counts(api_double)[key] for key in keys]
    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


@pytest.mark.usefixtures("frozen_heap")
def test_a_second_client_sees_what_the_first_spent(
    api_double: FootballApiDouble, where: dict[str, Any]
) -> None:
    """Each Dagster step or run opens its own budget; the budget outlives them."""
    for _ in range(3):  # 3 clients x 6 requests, one after the other
        spender = budget(where, base_url=api_double.base_url)
        client = Client(spender, api_double.base_url)
        for key in ["2000", "2001", "2002", "2003", "2013", "2014"]:
            client.teams(key)
        spender.close()

    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


@pytest.mark.usefixtures("frozen_heap")
def test_a_tighter_server_is_obeyed_across_processes(
    api_double: FootballApiDouble, where: dict[str, Any]
) -> None:
    """The server allows 4 per window while 10 are configured: what one client hears from the
    server, the next one (another step, another process) heeds before sending."""
    api_double.set_limit(4, TEST_WINDOW)
    first = budget(where, base_url=api_double.base_url)
    for key in ["2000", "2001", "2002", "2003"]:
        Client(first, api_double.base_url).teams(key)  # the fourth answer says 0 remain
    second = budget(where, base_url=api_double.base_url)  # knows nothing of its own
    Client(second, api_double.base_url).teams("2013")
    first.close()
    second.close()

    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= 4


def test_the_servers_last_word_is_read_without_spending_it(where: dict[str, Any]) -> None:
    spender = budget(where)
    try:
        assert spender.last_server_word() is None
        now = time.time()
        spender.server_said(now, 3, 5.0)
        spender.server_said(now - 1, 0, 9.0)  # an answer to an older request, arriving late
        available, reset_at = spender.last_server_word() or (None, 0.0)
        assert available == 3
        assert now + 4.5 < reset_at < now + 5.0 + spender.margin + 0.5
        assert spender.last_server_word() == (3, pytest.approx(reset_at, abs=0.2))
        assert spender.take().seconds == 0.0  # takes one
        assert (spender.last_server_word() or (None,))[0] == 2
        spender.server_said(time.time(), 0, 1.0)
        assert 0.5 < spender.take().seconds <= 1.0 + spender.margin
        spender.server_said(time.time(), 0, 0.0)  # the window is over (plus the margin)
        time.sleep(spender.margin + 0.05)
        assert spender.take().seconds == 0.0 and spender.last_server_word() is None
    finally:
        spender.close()


def test_the_servers_word_is_taken_only_with_a_slot(where: dict[str, Any]) -> None:
    """While the log is full, nothing is taken from what the server said remains: a request
    that waits for the budget does not also use up the server's count (one transaction)."""
    spender = budget(where, limit=1)
    try:
        assert spender.take() == (0.0, "budget")
        spender.server_said(time.time(), 5, 30.0)
        assert spender.take().reason == "budget"  # the log is full: nothing taken
        assert (spender.last_server_word() or (None,))[0] == 5
        spender.server_said(time.time(), 0, 30.0)
        assert spender.take().reason == "server"  # the server's word comes first
    finally:
        spender.close()


def test_a_full_window_says_how_long_before_waiting(where: dict[str, Any]) -> None:
    spender = budget(where, limit=2)
    told: list[float] = []
    try:
        waited = [spender.spend(on_wait=lambda wait: told.append(wait.seconds)) for _ in range(3)]
    finally:
        spender.close()
    interval = TEST_WINDOW + safety_margin(TEST_WINDOW)
    assert waited[0] < 0.2 and waited[1] < 0.2 and len(told) == 1  # told once, for the third
    assert interval - 0.2 < told[0] <= interval + 0.01
    assert interval - 0.2 < waited[2] < interval + 0.5


def test_the_key_reaches_no_file_name_and_no_file(
    api_double: FootballApiDouble, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state" / "football_assets"
    spender = budget({"state_dir": state_dir}, base_url=api_double.base_url)
    client = Client(spender, api_double.base_url)
    for key in ["2000", "2001", "2002"]:
        client.teams(key)
    spender.server_said(time.time(), 0, 1.0)
    spender.close()

    assert state_dir.stat().st_mode & 0o777 == 0o700
    path = budget_file(state_dir, api_double.base_url, TEST_KEY)
    assert path.exists() and re.fullmatch(r"budget-[0-9a-f]{16}\.sqlite", path.name)
    files = [item for item in state_dir.rglob("*") if item.is_file()]
    assert path in files
    for item in files:
        assert TEST_KEY not in item.name
        assert TEST_KEY.encode() not in item.read_bytes()


def test_the_key_reaches_no_row_in_postgres(pg_url: str, schema: str) -> None:
    spender = budget({"database_url": pg_url, "schema": schema})
    spender.spend()
    spender.server_said(time.time(), 0, 1.0)
    spender.close()
    with psycopg.connect(pg_url.replace("+psycopg", "")) as conn:
        for table in ["budget_log", "budget_server"]:
            rows = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table)))
            assert TEST_KEY not in repr(rows.fetchall())


def test_two_processes_opening_one_schema_at_once_both_get_it(pg_url: str, schema: str) -> None:
    """CREATE ... IF NOT EXISTS alone fails one of two concurrent creators."""
    opened: list[RequestBudget] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        opened.append(budget({"database_url": pg_url, "schema": schema}))

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for spender in opened:
        spender.close()
    assert len(opened) == 4


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://budget:s3cret-pw@127.0.0.1:1/db",
        "postgresql://budget:s3cret-pw@127.0.0.1:notaport/db",
        "host=127.0.0.1 port=1 password=s3cret-pw nonsense",
    ],
)
def test_the_database_url_never_reaches_an_error(url: str) -> None:
    with pytest.raises(ConnectionError) as raised:
        open_budget(
            base_url="http://x/v4", api_key=TEST_KEY, limit=1, window_seconds=1, database_url=url
        )
    assert "s3cret-pw" not in str(raised.value) and url not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_budget_needs_a_place(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="state folder or a database URL"):
        open_budget(base_url="http://x/v4", api_key=TEST_KEY, limit=1, window_seconds=1)


def test_limiter_refuses_a_zero_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        budget({"state_dir": tmp_path}, limit=0)


def test_the_safety_margin_is_small_next_to_the_window() -> None:
    assert safety_margin(60.0) == 1.0  # a minute's window loses at most a second
    assert safety_margin(1.0) == 0.1


if __name__ == "__main__":
    child_main()
