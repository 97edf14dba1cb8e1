"""`football-assets` called as `main(argv)` in the test's process: the fast lane's path through
the command line (test_cli.py runs it as the separate process a user starts, in the slow lane)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from football_assets.cli import main


@pytest.fixture
def env(
    clean_env: None, pg_url: str, schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Offline (no key), into the session's PostgreSQL; returns the output folder."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    for name, value in {
        "DATABASE_URL": pg_url,
        "FOOTBALL_DB_SCHEMA": schema,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "FOOTBALL_OUTPUT_DIR": str(tmp_path / "output"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "output"


def test_refresh_then_status_and_db_url(
    env: Path, capfd: pytest.CaptureFixture[str], pg_url: str
) -> None:
    assert main(["refresh"]) == 0
    refreshed = capfd.readouterr().out
    assert main(["status", "--json"]) == 0
    status = json.loads(capfd.readouterr().out)
    assert main(["status"]) == 0
    screen = capfd.readouterr().out
    assert main(["db", "url"]) == 0
    url = capfd.readouterr().out.strip()

    assert "Done in" in refreshed
    summary = (env / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert "2021,PL,Premier League,20" in summary
    assert status["rows"]["fact_competitions"] >= 20
    assert "dim_teams" in screen
    assert unquote(url).endswith("@" + pg_url.split("@", 1)[1])  # the same server and database
