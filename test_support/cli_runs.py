"""`football-assets` as a user runs it, for tests: a clean environment and a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "football_assets.cli"]


def user_env(**extra: str) -> dict[str, str]:
    """The user's environment without any football/Dagster settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FOOTBALL_") and k not in {"DATABASE_URL", "DAGSTER_HOME"}
    }
    env.update(extra)
    return env


def live_env(
    base_url: str,
    api_key: str,
    *,
    limit: int,
    window_seconds: float,
    pg_url: str,
    schema: str,
    home: Path,
    **extra: str,
) -> dict[str, str]:
    """Live against a double, into the session's PostgreSQL, with a private instance, output
    folder and request budget (XDG_STATE_HOME) under `home`."""
    return user_env(
        FOOTBALL_DATA_API_KEY=api_key,
        FOOTBALL_DATA_API_URL=base_url,
        FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(limit),
        FOOTBALL_DATA_RATE_WINDOW_SECONDS=str(window_seconds),
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        DAGSTER_HOME=str(home / "dagster_home"),
        XDG_STATE_HOME=str(home / "state"),
        FOOTBALL_OUTPUT_DIR=str(home / "output"),
        **extra,
    )


def cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    if "DAGSTER_HOME" in env:
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,  # its own process group, like every server a test starts
    )
