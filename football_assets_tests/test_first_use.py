"""Two `football-assets` commands started together on a new DAGSTER_HOME both succeed.

Dagster creates its storage tables when an instance is first opened; two processes doing it at
once used to end one of them in "table runs already exists". Each pair starts on a folder that
does not exist yet, three times over, so a race that is likely but not certain still shows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from test_support import refresh_process

PAIRS = 3


def together(
    *commands: tuple[str, ...], cwd: Path, env: dict[str, str]
) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once (each in its own process group), then wait for each."""
    processes = [refresh_process.start(*command, cwd=cwd, env=env) for command in commands]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=300)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in processes:
            refresh_process.kill_group(process)
    return results


@pytest.mark.parametrize(
    "commands",
    [(("refresh",), ("refresh",)), (("refresh",), ("status",))],
    ids=["refresh+refresh", "refresh+status"],
)
def test_commands_started_together_on_a_new_instance_both_succeed(
    commands: tuple[tuple[str, ...], ...], tmp_path: Path, pg_url: str, schema: str
) -> None:
    for attempt in range(PAIRS):
        home = tmp_path / f"home{attempt}" / "dagster_home"  # not there yet
        env = refresh_process.user_env(
            DATABASE_URL=pg_url,
            FOOTBALL_DB_SCHEMA=schema,
            DAGSTER_HOME=str(home),
            FOOTBALL_OUTPUT_DIR=str(tmp_path / f"home{attempt}" / "output"),
            XDG_STATE_HOME=str(tmp_path / f"home{attempt}" / "state"),
        )
        results = together(*commands, cwd=tmp_path, env=env)
        for command, result in zip(commands, results, strict=True):
            assert result.returncode == 0, (attempt, command, result.stderr[-3000:])
            assert "Traceback" not in result.stdout + result.stderr, (attempt, command)
        assert "Rows in schema" in results[0].stdout
        if commands[1] == ("status",):
            assert f"Dagster     {home}" in results[1].stdout, results[1].stdout
