"""Local runs stay local: .env.example does not switch a terminal to JSON lines, and a .env
that does is named in `refresh`'s first line."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_support.refresh_process import cli, user_env

REPO = Path(__file__).resolve().parents[1]


def test_env_example_leaves_the_log_format_to_the_deployments() -> None:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    assert not re.search(r"^FOOTBALL_LOG_FORMAT=", text, re.MULTILINE)
    # The deployments set json themselves.
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "FOOTBALL_LOG_FORMAT: ${FOOTBALL_LOG_FORMAT:-json}" in compose
    template = (REPO / "deploy" / "aws" / "template.yaml").read_text(encoding="utf-8")
    assert template.count("{Name: FOOTBALL_LOG_FORMAT, Value: json}") >= 3


def test_refresh_names_a_dot_env_that_turned_on_json(
    tmp_path: Path, pg_url: str, schema: str
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# copied from a deployment\nFOOTBALL_LOG_FORMAT=json\n", encoding="utf-8")
    env = user_env(
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    result = cli("refresh", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout.splitlines()[0])
    assert str(env_file) in first["message"]
    assert "FOOTBALL_LOG_FORMAT=json" in first["message"]

    # The same setting from the shell, not .env: JSON as asked, and no word about .env.
    env_file.unlink()
    result = cli("refresh", cwd=tmp_path, env={**env, "FOOTBALL_LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr
    assert ".env" not in result.stdout.splitlines()[0]
    assert json.loads(result.stdout.splitlines()[0])["message"].startswith("refreshing")
