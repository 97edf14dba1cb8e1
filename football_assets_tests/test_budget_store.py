"""The request budget's file and folder broken as a user's machine breaks them, seen through the
real CLI: `refresh` moves a corrupt file aside and goes on, or stops before any request with one
line naming the file or folder and what to do; `status` writes nothing and says it in a line.

We run as root in CI, where permission bits stop nothing: a read-only file or folder is a
read-only bind mount, an immutable one `chattr +i`, a full one a tiny tmpfs. Where the machine
refuses those (not root, no mount rights), that case is skipped and says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from football_assets import settings, status
from football_assets.definitions import build_definitions
from football_assets.refresh import refresh
from football_assets.resources.budget import budget_file, open_budget
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW, live_api
from test_support import refresh_process
from test_support.api_double import ApiData, FootballApiDouble

AUTH = {"X-Auth-Token": TEST_KEY}
FAR_API = "http://127.0.0.1:9/v4"  # status makes no request: an API nobody listens on


@dataclass
class Store:
    state_home: Path  # XDG_STATE_HOME
    folder: Path  # the state folder, XDG_STATE_HOME/football_assets
    path: Path  # the budget file
    names: tuple[str, ...]  # what the one line must name, e.g. the file and the variable


def _run(*command: str) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@contextlib.contextmanager
def _mounted(target: Path, *how: str) -> Iterator[None]:
    if os.geteuid() != 0 or not _run("mount", *how, str(target)):
        pytest.skip(f"needs root and mount rights to make {target.name} {' '.join(how)}")
    try:
        yield
    finally:
        if not _run("umount", str(target)):
            _run("umount", "-l", str(target))


@contextlib.contextmanager
def _read_only_bind(target: Path) -> Iterator[None]:
    with _mounted(target, "--bind", str(target)):
        if not _run("mount", "-o", "remount,bind,ro", str(target)):
            pytest.skip("this machine cannot remount a bind mount read-only")
        yield


@contextlib.contextmanager
def _immutable(target: Path) -> Iterator[None]:
    chattr = shutil.which("chattr")
    if chattr is None or not _run(chattr, "+i", str(target)):
        pytest.skip("chattr +i is not supported here (no chattr, not root, or the file system)")
    try:
        yield
    finally:
        _run(chattr, "-i", str(target))


def _budget_with_a_word(folder: Path, base_url: str) -> Path:
    """A budget that has spent a slot and heard the server say 7 remain for 10 minutes."""
    budget = open_budget(
        base_url=base_url,
        api_key=TEST_KEY,
        limit=TEST_LIMIT,
        window_seconds=TEST_WINDOW,
        state_dir=folder,
    )
    budget.spend()
    budget.server_said(time.time(), 7, 600.0)
    budget.close()
    return budget_file(folder, base_url, TEST_KEY)


@contextlib.contextmanager
def broken(kind: str, tmp_path: Path, base_url: str) -> Iterator[Store]:
    state_home = tmp_path / "state"
    folder = state_home / "football_assets"
    folder.mkdir(parents=True)
    if kind == "full_folder":
        with _mounted(folder, "-t", "tmpfs", "-o", "size=256k", "tmpfs"):
            path = _budget_with_a_word(folder, base_url)
            filler = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
            with contextlib.suppress(OSError):
                while os.write(filler, bytes(4096)):  # until the file system says it is full
                    pass
            os.close(filler)
            yield Store(state_home, folder, path, (str(folder), "no space left"))
        return
    if kind == "cannot_exist":
        # Root passes os.access on /proc, where nothing can be created.
        state_home = Path("/proc/x")
        folder = state_home / "football_assets"
        yield Store(state_home, folder, budget_file(folder, base_url, TEST_KEY), (str(folder),))
        return
    path = _budget_with_a_word(folder, base_url)
    if kind == "corrupt":
        path.write_bytes(os.urandom(16384))
        yield Store(state_home, folder, path, (str(path), "corrupt"))
    elif kind == "readonly_file":
        with _read_only_bind(path):
            yield Store(state_home, folder, path, (str(path), "read-only", "delete it"))
    elif kind == "immutable_file":
        with _immutable(path):
            yield Store(state_home, folder, path, (str(path), "chattr -i", "delete it"))
    elif kind == "readonly_folder":
        with _read_only_bind(folder):
            yield Store(state_home, folder, path, (str(folder), "read-only"))
    else:
        raise AssertionError(kind)


def _tree(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in the folder: its content's hash and modification time."""
    if not folder.is_dir():
        return {}
    return {
        item.name: (hashlib.sha256(item.read_bytes()).hexdigest(), item.stat().st_mtime_ns)
        for item in sorted(folder.iterdir())
        if item.is_file()
    }


def _live_env(store: Store, tmp_path: Path, base_url: str, **extra: str) -> dict[str, str]:
    return refresh_process.user_env(
        FOOTBALL_DATA_API_KEY=TEST_KEY,
        FOOTBALL_DATA_API_URL=base_url,
        FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(TEST_LIMIT),
        FOOTBALL_DATA_RATE_WINDOW_SECONDS=str(TEST_WINDOW),
        XDG_STATE_HOME=str(store.state_home),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        FOOTBALL_OUTPUT_DIR=str(tmp_path / "output"),
        **extra,
    )


STOPS = ["readonly_file", "immutable_file", "readonly_folder", "full_folder", "cannot_exist"]


@pytest.mark.parametrize("kind", STOPS)
def test_refresh_stops_before_any_request_naming_the_store(
    kind: str, tmp_path: Path, api_double: FootballApiDouble
) -> None:
    pgdata = tmp_path / "pgdata"  # the embedded warehouse: the budget is the state folder's
    with broken(kind, tmp_path, api_double.base_url) as store:
        env = _live_env(store, tmp_path, api_double.base_url, FOOTBALL_EMBEDDED_PGDATA=str(pgdata))

        done = refresh_process.run("refresh", cwd=tmp_path, env=env, timeout=120)

    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("football-assets: the request budget"), line
    for name in (*store.names, "XDG_STATE_HOME"):
        assert name in line, line
    assert api_double.count() == 0  # not one request
    assert not pgdata.exists() and not (tmp_path / "dagster_home").exists()  # nothing started


def _data_directory(pg_url: str) -> str:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW data_directory")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_refresh_moves_a_corrupt_budget_aside_and_goes_on(
    tmp_path: Path, api_double: FootballApiDouble, pg_url: str, schema: str
) -> None:
    with broken("corrupt", tmp_path, api_double.base_url) as store:
        garbage = store.path.read_bytes()
        env = _live_env(
            store,
            tmp_path,
            api_double.base_url,
            FOOTBALL_EMBEDDED_PGDATA=_data_directory(pg_url),  # the session's server
            FOOTBALL_DB_SCHEMA=schema,
        )

        done = refresh_process.run("refresh", cwd=tmp_path, env=env, timeout=300)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [notice] = [line for line in done.stdout.splitlines() if "was corrupt" in line]
    assert str(store.path) in notice and "moved it to" in notice
    [aside] = store.folder.glob(f"{store.path.name}.corrupt-*")
    assert aside.name in notice and aside.read_bytes() == garbage  # kept, for a post-mortem
    with closing(sqlite3.connect(store.path)) as db:  # a new, whole budget in its place
        assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM budget_server").fetchone() == (1,)
    assert api_double.count() == 14 and api_double.refused_count() == 0
    assert (tmp_path / "output" / "summary.csv").exists()


STATUS_FAULTS = ["corrupt", "readonly_file", "immutable_file", "readonly_folder", "full_folder"]


@pytest.mark.parametrize("kind", STATUS_FAULTS)
def test_status_reads_a_broken_store_without_writing_and_says_so_in_a_line(
    kind: str, tmp_path: Path
) -> None:
    with broken(kind, tmp_path, FAR_API) as store:
        env = _live_env(store, tmp_path, FAR_API, FOOTBALL_EMBEDDED_PGDATA=str(tmp_path / "pg"))
        before = _tree(store.folder)

        as_json = refresh_process.run("status", "--json", cwd=tmp_path, env=env, timeout=120)
        screen = refresh_process.run("status", cwd=tmp_path, env=env, timeout=120)

        after = _tree(store.folder)
    for done in (as_json, screen):
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
    budget = json.loads(as_json.stdout)["api"]
    problem = budget["problem"]
    for name in store.names:
        assert name in problem, problem
    assert "XDG_STATE_HOME" in problem
    if kind == "corrupt":
        assert budget["budget"] == f"unknown: {problem}" and budget["server_said"] is None
    else:  # still readable: what the server said, and why the next refresh will stop
        assert budget["server_said"]["requests_available"] == 7
    assert problem in screen.stdout
    assert after == before  # not a byte, not a lock, journal, -wal or -shm file


def test_status_on_a_state_folder_that_cannot_exist_creates_nothing(tmp_path: Path) -> None:
    with broken("cannot_exist", tmp_path, FAR_API) as store:
        env = _live_env(store, tmp_path, FAR_API, FOOTBALL_EMBEDDED_PGDATA=str(tmp_path / "pg"))
        done = refresh_process.run("status", "--json", cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["api"]["budget"] == "no request recorded yet"


def test_status_reads_the_budget_with_no_thread_lock_or_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget's word, read as it is: no limiter (and its leak thread), no lock file, no
    write transaction, nothing left beside the file."""
    folder = tmp_path / "state" / "football_assets"
    path = _budget_with_a_word(folder, FAR_API)
    (folder / f"{path.name}.lock").unlink(missing_ok=True)  # none since pyrate-limiter left
    before = _tree(folder)
    threads = {thread.name for thread in threading.enumerate()}
    config = settings.load(
        {
            "FOOTBALL_DATA_API_KEY": TEST_KEY,
            "FOOTBALL_DATA_API_URL": FAR_API,
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "HOME": str(tmp_path),
            "FOOTBALL_OUTPUT_DIR": str(tmp_path / "output"),
        }
    )
    with closing(sqlite3.connect(path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")  # a refresh in the middle of writing

        found = status._budget(config, reachable=False)

        writer.execute("ROLLBACK")
    assert found["server_said"]["requests_available"] == 7, found
    assert "problem" not in found
    assert {thread.name for thread in threading.enumerate()} <= threads
    assert _tree(folder) == before


@pytest.mark.slow
def test_a_budget_deleted_between_two_refreshes_draws_at_most_one_429(
    tmp_path: Path, api_data: ApiData, warehouse: Warehouse, instance: dg.DagsterInstance
) -> None:
    """The record of the requests the server still counts is deleted: the next refresh starts
    blind into a full window. The server's first 429 must hold off every request after it."""
    limit, window = 7, 10.0
    state, output = tmp_path / "state", OutputLocation(location=str(tmp_path / "output"))

    def defs(per_window: int) -> dg.Definitions:
        api_resource = live_api(
            api, state, requests_per_minute=per_window, rate_window_seconds=window
        )
        return build_definitions(api_resource, warehouse, output)

    with FootballApiDouble(api_data, api_key=TEST_KEY, limit=14, window_seconds=window) as api:
        refresh(defs(14), instance, echo=lambda _: None)  # registers the competitions
        for item in state.iterdir():  # the budget file, its lock, any -wal and -shm
            item.unlink()
        api.reset_rate_limit()
        api.set_limit(limit)
        with requests.Session() as session:  # the requests the deleted file recorded
            for _ in range(limit):
                answer = session.get(f"{api.base_url}/competitions", headers=AUTH, timeout=10)
                assert answer.status_code == 200
        before = api.count()

        refresh(defs(limit), instance, echo=lambda _: None, force=True)

        second = api.requests[before:]
    refused = [r.path for r in second if r.refused]
    assert len(refused) == 1, refused  # the first request into the full window, only
    assert second[0].refused and len(second) == 15  # then each of the 14 answers once
    admitted = [r.time for r in second if not r.refused]
    assert all(b - a >= window for a, b in zip(admitted, admitted[limit:], strict=False))
