"""`football-assets` as a user runs it, for tests: a clean environment and a real process.

The same processes as `refresh_process` (each in its own group), with everything the run
writes (instance, output, request budget) under one folder.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from test_support.refresh_process import CLI, run, user_env
from test_support.refresh_process import live_env as _live_env

__all__ = ["CLI", "cli", "live_env", "user_env"]


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
    return _live_env(
        home / "dagster_home",
        base_url,
        api_key,
        pg_url,
        schema,
        limit=limit,
        window_seconds=window_seconds,
        output_dir=home / "output",
        XDG_STATE_HOME=str(home / "state"),
        **extra,
    )


def cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    if "DAGSTER_HOME" in env:
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return run(*args, cwd=cwd, env=env, timeout=timeout)
