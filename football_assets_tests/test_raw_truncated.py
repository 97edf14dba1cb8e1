"""Raw answers removed behind the pipeline's back (`TRUNCATE raw_responses` by hand): the next
refresh says what happened and what to do, and a full refresh heals it."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from test_support.refresh_process import cli, user_env


def test_a_refresh_after_the_raw_answers_were_truncated_says_so(
    tmp_path: Path, pg_url: str, schema: str
) -> None:
    env = user_env(
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        FOOTBALL_OUTPUT_DIR=str(tmp_path / "output"),
    )
    first = cli("refresh", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'TRUNCATE "{schema}".raw_responses'))
    engine.dispose()

    one = cli("refresh", "--competition", "2021", cwd=tmp_path, env=env)

    assert one.returncode == 1, one.stdout
    (line,) = one.stderr.splitlines()
    assert f"the stored raw_competitions answer is gone from {schema}.raw_responses" in line
    assert "run a full refresh" in line and "never been materialized" not in line
    healed = cli("refresh", cwd=tmp_path, env=env)
    assert healed.returncode == 0, healed.stderr
