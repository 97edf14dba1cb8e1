"""`football-assets` as a user runs it, for tests that kill it, read its output or its files.

Each command runs in a process group of its own (`start_new_session`), so a SIGKILL reaches it
and anything it started, as `kill -9` of a terminal's job would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "football_assets.cli"]


def user_env(**variables: str) -> dict[str, str]:
    """This environment without any football/Dagster/database setting, plus `variables`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FOOTBALL_") and k not in {"DATABASE_URL", "DAGSTER_HOME"}
    }
    env.update(variables)
    return env


def live_env(
    home: Path,
    api_url: str,
    api_key: str,
    pg_url: str,
    schema: str,
    *,
    limit: int,
    window_seconds: float,
    output_dir: Path,
    **variables: str,
) -> dict[str, str]:
    """Live against `api_url`, into `schema` of `pg_url`, with `home` as DAGSTER_HOME."""
    return user_env(
        FOOTBALL_DATA_API_KEY=api_key,
        FOOTBALL_DATA_API_URL=api_url,
        FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(limit),
        FOOTBALL_DATA_RATE_WINDOW_SECONDS=str(window_seconds),
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        FOOTBALL_OUTPUT_DIR=str(output_dir),
        DAGSTER_HOME=str(home),
        **variables,
    )


def live_env_under(
    root: Path,
    api_url: str,
    api_key: str,
    *,
    limit: int,
    window_seconds: float,
    pg_url: str,
    schema: str,
    **variables: str,
) -> dict[str, str]:
    """`live_env` with the instance, output folder and request budget (XDG_STATE_HOME) all
    private to `root`."""
    return live_env(
        root / "dagster_home",
        api_url,
        api_key,
        pg_url,
        schema,
        limit=limit,
        window_seconds=window_seconds,
        output_dir=root / "output",
        XDG_STATE_HOME=str(root / "state"),
        **variables,
    )


def start(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`football-assets *args` in its own process group."""
    return subprocess.Popen(
        [*CLI, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`football-assets *args` to its end; killed with its group if it outlives `timeout`."""
    process = start(*args, cwd=cwd, env=env)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            kill_group(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`run` in an instance folder that exists already, as after a first command."""
    if "DAGSTER_HOME" in env:
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return run(*args, cwd=cwd, env=env, timeout=timeout)


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process and everything in its group, and reap it (once)."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def interrupt(
    process: subprocess.Popen[str], signum: int, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Send `signum` as a user would (SIGINT to the group, as Ctrl-C in a terminal does; others
    to the process, as `kill` does) and wait for the exit; the group is killed if it outlives
    `timeout`."""
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            kill_group(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
