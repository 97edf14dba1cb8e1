"""`football-assets` as a user runs it: a real process, its exit code and what it prints."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW, read_table
from test_support.api_double import FootballApiDouble
from test_support.refresh_process import CLI, cli, live_env_under, user_env

TABLES = ["dim_competitions", "dim_teams", "fact_competitions"]


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
    assert "See it in the UI: football-assets ui" in out
    assert "OFFLINE" in result.stdout + result.stderr  # the run log says it loudly
    # The runs are in the instance the user will open with `football-assets ui`.
    assert (workdir / ".dagster_home").is_dir()
    assert (workdir / ".football" / "pgdata" / "PG_VERSION").exists()
    # That instance got its dagster.yaml: the project's JSON handler, run monitoring, and a
    # word on telemetry, which is left to the user.
    yaml = (workdir / ".dagster_home" / "dagster.yaml").read_text(encoding="utf-8")
    assert "football_assets.log_format.json_stdout_handler" in yaml
    assert "run_monitoring:\n  enabled: true" in yaml and "# telemetry:" in yaml
    assert "telemetry" in out  # said once, where it can be set
    # Dagster's notices and event log lines are in a file, not interleaved with the display.
    assert result.stderr == ""
    assert " - dagster - " not in out
    log = Path(out.split("Dagster's log of this refresh: ")[1].splitlines()[0])
    assert log.parent == workdir / ".dagster_home" / "refresh_logs"
    assert "raw_teams - Stored 13 raw_teams answers" in log.read_text(encoding="utf-8")

    again = cli("refresh", cwd=workdir, env=user_env())
    assert again.returncode == 0, again.stderr
    assert summary.read_text(encoding="utf-8").count("\n") == 14
    assert "telemetry" not in again.stdout  # once: the file exists now


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


# ---- --competition, --force -----------------------------------------------------------------


def fact_rows(warehouse: Warehouse) -> dict[int, set[int]]:
    """Team ids per competition in fact_competitions."""
    found: dict[int, set[int]] = {}
    for row in read_table(warehouse, "fact_competitions"):
        found.setdefault(row["competition_id"], set()).add(row["team_id"])
    return found


def raw_answers(warehouse: Warehouse) -> dict[str, int]:
    """How many raw answers are stored per partition ("" is the competition list)."""
    rows = warehouse.query(
        "SELECT partition_key, count(*) AS n FROM {schema}.raw_responses GROUP BY partition_key"
    )
    return {r["partition_key"]: r["n"] for r in rows}


def run_count(home: Path) -> int:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return instance.get_runs_count()


def run_ids(stdout: str) -> list[str]:
    done = next(line for line in stdout.splitlines() if line.startswith("Done in "))
    return done.split(", runs ", 1)[1].split(", ")


def test_one_competition_changes_only_its_rows(
    tmp_path: Path,
    api_double: FootballApiDouble,
    pg_url: str,
    schema: str,
    warehouse: Warehouse,
) -> None:
    env = live_env_under(
        tmp_path,
        api_double.base_url,
        TEST_KEY,
        limit=TEST_LIMIT,
        window_seconds=TEST_WINDOW,
        pg_url=pg_url,
        schema=schema,
    )
    first = cli("refresh", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    before, answers = fact_rows(warehouse), raw_answers(warehouse)
    # The API changes two competitions; only one is refreshed.
    left_2021, left_2014 = sorted(before[2021])[0], sorted(before[2014])[0]
    api_double.data.remove_team(2021, left_2021)
    api_double.data.remove_team(2014, left_2014)
    served = api_double.count()

    one = cli("refresh", "--competition", "2021", cwd=tmp_path, env=env)

    assert one.returncode == 0, one.stderr
    assert "refreshing competitions 2021 from the live API" in one.stdout
    assert api_double.count() == served + 1  # GET /competitions/2021/teams, nothing else
    after = fact_rows(warehouse)
    assert after[2021] == before[2021] - {left_2021}
    assert left_2014 in after[2014]  # changed at the API, not refreshed: untouched
    assert {k: v for k, v in after.items() if k != 2021} == {
        k: v for k, v in before.items() if k != 2021
    }
    # An id still names the competition; its answer is stored under its key, the code.
    assert raw_answers(warehouse) == {**answers, "PL": answers["PL"] + 1}
    assert ": 1 API request, runs" in one.stdout
    summary = (tmp_path / "output" / "summary.csv").read_text(encoding="utf-8")
    assert f"2021,PL,Premier League,{len(before[2021]) - 1}" in summary


def test_an_unknown_competition_is_one_line_naming_the_known_ones_and_changes_nothing(
    tmp_path: Path, pg_url: str, schema: str, warehouse: Warehouse
) -> None:
    env = user_env(DATABASE_URL=pg_url, FOOTBALL_DB_SCHEMA=schema)
    assert cli("refresh", cwd=tmp_path, env=env).returncode == 0
    tables = {name: read_table(warehouse, name) for name in TABLES}
    summary = (tmp_path / "output" / "summary.csv").read_bytes()
    runs = run_count(tmp_path / ".dagster_home")

    result = cli("refresh", "--competition", "pl", "--competition", "9999", cwd=tmp_path, env=env)

    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.count("\n") == 0, result.stderr
    assert line == (
        "football-assets: unknown competition 9999; valid: WC, CL, BL1, DED, BSA, PD, FL1, ELC, "
        "PPL, EC, SA, PL, CLI (a code in any case, or a competition's id); nothing was changed"
    )
    assert {name: read_table(warehouse, name) for name in TABLES} == tables
    assert (tmp_path / "output" / "summary.csv").read_bytes() == summary
    assert run_count(tmp_path / ".dagster_home") == runs  # no run either


def test_force_rebuilds_in_new_runs_and_rewrites_nothing_when_rows_are_equal(
    tmp_path: Path, pg_url: str, schema: str, warehouse: Warehouse
) -> None:
    env = user_env(DATABASE_URL=pg_url, FOOTBALL_DB_SCHEMA=schema)
    first = cli("refresh", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    tables = {name: read_table(warehouse, name) for name in TABLES}
    unforced = cli("refresh", cwd=tmp_path, env=env)
    assert "skipped dim_competitions" in unforced.stdout  # without --force: nothing to rebuild

    forced = cli("refresh", "--force", cwd=tmp_path, env=env)

    assert forced.returncode == 0, forced.stderr
    assert "skipped" not in forced.stdout
    runs = run_ids(forced.stdout)
    assert len(runs) == 3 and not set(runs) & set(run_ids(first.stdout) + run_ids(unforced.stdout))
    assert {name: read_table(warehouse, name) for name in TABLES} == tables
    # The forced run compared the rows and found them equal: it says so and records nothing,
    # so the tables and the report still come from the first refresh's warehouse run.
    assert "nothing changed: the new answers hold the same rows" in forced.stdout
    status = json.loads(cli("status", "--json", cwd=tmp_path, env=env).stdout)
    built = {a["asset"]: a["run_id"] for a in status["assets"]}
    assert all(built[name] == run_ids(first.stdout)[2] for name in [*TABLES, "summary_csv"])


# ---- db -------------------------------------------------------------------------------------


def test_db_url_only_reads(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    stopped = cli("db", "url", cwd=tmp_path, env=user_env(FOOTBALL_EMBEDDED_PGDATA=str(pgdata)))
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == (
        f"embedded PostgreSQL in {pgdata} (stopped; `football-assets refresh` starts it)"
    )
    assert not pgdata.exists()  # nothing was started, nothing created

    url = "postgresql://football:s3cret-pw@db.example:5432/warehouse"
    env = user_env(DATABASE_URL=url)
    assert cli("db", "url", cwd=tmp_path, env=env).stdout.strip() == (
        "postgresql://football:***@db.example:5432/warehouse"
    )
    shown = cli("db", "url", "--show-password", cwd=tmp_path, env=env)
    assert shown.stdout.strip() == url


def test_db_psql_opens_the_warehouse_schema_without_the_password_on_its_command_line(
    tmp_path: Path, pg_url: str, schema: str, warehouse: Warehouse
) -> None:
    warehouse.get_engine()  # the schema and its tables exist
    env = user_env(DATABASE_URL=pg_url, FOOTBALL_DB_SCHEMA=schema)
    real = subprocess.run(
        [*CLI, "db", "psql"],
        cwd=tmp_path,
        env=env,
        input="SELECT count(*) AS tables FROM dim_competitions;\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert real.returncode == 0, real.stderr
    assert "tables" in real.stdout and "(1 row)" in real.stdout  # found in the search path

    # What psql is given, seen by a stand-in on PATH.
    fake = tmp_path / "bin" / "psql"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\n'
        'printf "%s|%s\\n" "$PGPASSWORD" "$PGOPTIONS" > "$0.env"\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    secret = "s3cret-pw-8c1d"
    with_password = user_env(
        DATABASE_URL=f"postgresql://football:{secret}@db.example:5432/warehouse",
        FOOTBALL_DB_SCHEMA=schema,
        PATH=f"{fake.parent}:{env['PATH']}",
    )
    result = cli("db", "psql", cwd=tmp_path, env=with_password)
    assert result.returncode == 0, result.stderr
    args = Path(f"{fake}.args").read_text(encoding="utf-8")
    assert secret not in args + result.stdout + result.stderr
    assert "host=db.example" in args and "dbname=warehouse" in args and "user=football" in args
    assert Path(f"{fake}.env").read_text(encoding="utf-8").strip() == (
        f"{secret}|-c search_path={schema},public"
    )
