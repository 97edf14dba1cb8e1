"""`football-assets` as a user runs it: a real process, its exit code and what it prints."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW
from test_support.api_double import FootballApiDouble


def user_env(**extra: str) -> dict[str, str]:
    """The user's environment without any football/Dagster settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FOOTBALL_") and k not in {"DATABASE_URL", "DAGSTER_HOME"}
    }
    env.update(extra)
    return env


def cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "football_assets.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Stop the embedded server a command may have left running in this folder.
    cli("db", "stop", cwd=tmp_path, env=user_env())


def test_refresh_runs_offline_out_of_the_box(workdir: Path) -> None:
    """No key, no database: the bundled snapshot into an embedded PostgreSQL."""
    result = cli("refresh", cwd=workdir, env=user_env())

    assert result.returncode == 0, result.stderr
    summary = workdir / "output" / "summary.csv"
    with summary.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 13
    assert rows[-1]["competition_name"] == "Campeonato Brasileiro Série A"
    assert rows[-1]["number_of_teams"] == "0"
    out = result.stdout
    assert "bundled snapshot (offline)" in out
    assert str(summary) in out
    assert "dim_teams=226" in out and "fact_competitions=264" in out
    assert "dagster dev" in out
    assert "OFFLINE" in result.stdout + result.stderr  # the run log says it loudly
    # The runs are in the instance the user will open with `dagster dev`.
    assert (workdir / ".dagster_home").is_dir()
    assert (workdir / ".football" / "pgdata" / "PG_VERSION").exists()

    again = cli("refresh", cwd=workdir, env=user_env())
    assert again.returncode == 0, again.stderr
    assert summary.read_text(encoding="utf-8").count("\n") == 14


def test_bad_key_fails_with_one_line_and_no_key(
    workdir: Path, api_double: FootballApiDouble, pg_url: str, schema: str
) -> None:
    wrong_key = "wrong-key-0d9e8f7a6b"
    env = user_env(
        FOOTBALL_DATA_API_KEY=wrong_key,
        FOOTBALL_DATA_API_URL=api_double.base_url,
        FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(TEST_LIMIT),
        FOOTBALL_DATA_RATE_WINDOW_SECONDS=str(TEST_WINDOW),
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
    )
    result = cli("refresh", cwd=workdir, env=env)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "HTTP 400" in lines[0] and "Your API token is invalid." in lines[0]
    assert "FOOTBALL_DATA_API_KEY" in lines[0]
    assert "Traceback" not in result.stderr
    assert wrong_key not in result.stdout + result.stderr
    assert TEST_KEY not in result.stdout + result.stderr


def test_hostile_schema_name_is_refused(workdir: Path, pg_url: str) -> None:
    env = user_env(DATABASE_URL=pg_url, FOOTBALL_DB_SCHEMA="x; drop table y")
    result = cli("refresh", cwd=workdir, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "FOOTBALL_DB_SCHEMA" in result.stderr and "not a valid schema name" in result.stderr


def test_unreachable_database_fails_with_one_line(workdir: Path) -> None:
    env = user_env(DATABASE_URL="postgresql://football:s3cret-pw@127.0.0.1:9/warehouse")
    result = cli("refresh", cwd=workdir, env=env)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.count("\n") == 0, result.stderr
    assert "PostgreSQL" in line and "unavailable" in line and "DATABASE_URL" in line
    assert "s3cret-pw" not in result.stdout + result.stderr
