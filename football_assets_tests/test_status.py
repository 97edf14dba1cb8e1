"""`football-assets status`: what is where, how old and from where, in one screen; read-only."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from football_assets.assets.ingestion import raw_competitions
from football_assets.definitions import build_definitions
from football_assets.refresh import refresh
from football_assets.resources.defaults import BUDGET_SCHEMA
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets.staleness import WAREHOUSE_RUN
from football_assets_tests.conftest import TEST_KEY, live_api
from test_support.api_double import ApiData, FootballApiDouble
from test_support.refresh_process import cli, user_env

RAW = ["raw_competitions", "raw_teams"]
WITH_POLICY = [
    "dim_competitions",
    "dim_teams",
    "fact_competitions",
    "dim_teams_history",
    "competition_membership_history",
    "summary_csv",
]
POLICY = "warn after 26 h, fail after 50 h"
ROWS = {"dim_competitions": 13, "dim_teams": 226, "fact_competitions": 264}
ZERO = ["Campeonato Brasileiro Série A (2013)"]


def status(cwd: Path, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """`status --json` parsed, and the text screen."""
    as_json = cli("status", "--json", cwd=cwd, env=env)
    assert as_json.returncode == 0, as_json.stderr
    screen = cli("status", cwd=cwd, env=env)
    assert screen.returncode == 0, screen.stderr
    assert as_json.stderr == "" and screen.stderr == ""
    return json.loads(as_json.stdout), screen.stdout


def by_asset(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["asset"]: a for a in found["assets"]}


def test_an_empty_instance_and_a_stopped_server_start_nothing(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    env = user_env(FOOTBALL_EMBEDDED_PGDATA=str(pgdata))

    found, screen = status(tmp_path, env)

    assert found["warehouse"] == f"the embedded PostgreSQL in {pgdata}"
    assert found["schema"] == "football"
    assert found["database"] == "stopped (status never starts it; `football-assets refresh` does)"
    assert found["embedded_pid"] is None and found["rows"] is None
    assert found["zero_team_competitions"] is None
    assert found["dagster_home"] == str(tmp_path / ".dagster_home")
    assert found["instance"] == "none yet (`football-assets refresh` creates it)"
    assert found["api"] == {
        "source": "snapshot",
        "budget": "none: the offline snapshot makes no requests",
    }
    assets = by_asset(found)
    assert list(assets) == [*RAW, *WITH_POLICY]
    for name, asset in assets.items():
        assert asset["last_materialized"] is None and asset["source"] is None
        expected = ("UNKNOWN", POLICY) if name in WITH_POLICY else ("NOT_APPLICABLE", None)
        assert (asset["freshness"], asset["freshness_policy"]) == expected
    # Read-only: no server started, no instance created.
    assert not pgdata.exists() and not (tmp_path / ".dagster_home").exists()
    assert "stopped (status never starts it" in screen
    assert re.search(
        r"^dim_teams +never +UNKNOWN \(warn after 26 h, fail after 50 h\)$", screen, re.M
    )


def test_after_a_snapshot_refresh(
    tmp_path: Path,
    snapshot_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    pg_url: str,
    schema: str,
    output_dir: Path,
) -> None:
    started = time.time()
    report = refresh(snapshot_defs, instance, echo=lambda _: None)
    env = user_env(
        DAGSTER_HOME=str(tmp_path / "dagster_home"),  # the `instance` fixture's folder
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        FOOTBALL_OUTPUT_DIR=str(output_dir),
    )

    found, screen = status(tmp_path, env)

    assert found["warehouse"] == Warehouse(database_url=pg_url, schema_name=schema).describe()
    assert found["schema"] == schema and found["database"] == "reachable"
    assert found["rows"] == ROWS
    assert found["zero_team_competitions"] == ZERO and found["zero_teams_from"] == "warehouse"
    assert found["instance"] == "ok"
    assert found["summary"] == str(output_dir / "summary.csv")
    assert found["api"] == {
        "source": "snapshot",
        "budget": "none: the offline snapshot makes no requests",
        "last_answer": None,
    }
    assets = by_asset(found)
    built_by = {"raw_competitions": report.run_ids[0], "raw_teams": report.run_ids[1]}
    for name, asset in assets.items():
        assert asset["source"] == "snapshot 2025-01-31", name
        assert asset["run_id"] == built_by.get(name, report.run_ids[2]), name
        at = datetime.fromisoformat(asset["last_materialized"]).timestamp()
        assert started - 1 <= at <= time.time()
        if name in WITH_POLICY:
            assert (asset["freshness"], asset["freshness_policy"]) == ("PASS", POLICY)
        else:
            assert asset["freshness"] == "NOT_APPLICABLE"
    assert assets["raw_teams"]["partitions"] == "13/13 competitions"
    assert "Rows        dim_competitions=13, dim_teams=226, fact_competitions=264" in screen
    assert "Zero teams  Campeonato Brasileiro Série A (2013)" in screen
    assert screen.count("PASS (warn after 26 h, fail after 50 h)") == 6
    assert screen.count("snapshot 2025-01-31") == 8
    # Each table's last change set (its materializations are its changes).
    assert assets["dim_teams"]["last_change"] == {"inserted": 226, "updated": 0, "deleted": 0}
    assert assets["summary_csv"]["last_change"] is None
    assert (
        "Last change dim_competitions +13 ~0 -0, dim_teams +226 ~0 -0, "
        "fact_competitions +264 ~0 -0" in screen
    )


def test_after_a_live_refresh_it_shows_the_servers_word_on_the_budget(
    tmp_path: Path,
    warehouse: Warehouse,
    instance: dg.DagsterInstance,
    pg_url: str,
    schema: str,
    output_dir: Path,
) -> None:
    # A long window, so what the server said is still current when status reads it.
    with FootballApiDouble(
        ApiData.from_sample_dir(), api_key=TEST_KEY, limit=50, window_seconds=600
    ) as double:
        api = live_api(
            double,
            tmp_path / "state" / "football_assets",
            requests_per_minute=50,
            rate_window_seconds=600,
            # As the CLI's settings have it with DATABASE_URL set: the budget in PostgreSQL.
            budget_database_url=pg_url,
            budget_schema=BUDGET_SCHEMA,
        )
        defs = build_definitions(api, warehouse, OutputLocation(location=str(output_dir)))
        refresh(defs, instance, echo=lambda _: None)
        env = user_env(
            FOOTBALL_DATA_API_KEY=TEST_KEY,
            FOOTBALL_DATA_API_URL=double.base_url,
            FOOTBALL_DATA_REQUESTS_PER_MINUTE="50",
            FOOTBALL_DATA_RATE_WINDOW_SECONDS="600",
            DAGSTER_HOME=str(tmp_path / "dagster_home"),
            XDG_STATE_HOME=str(tmp_path / "state"),
            DATABASE_URL=pg_url,
            FOOTBALL_DB_SCHEMA=schema,
            FOOTBALL_OUTPUT_DIR=str(output_dir),
        )
        served, base_url = double.count(), double.base_url

        found, screen = status(tmp_path, env)

        assert double.count() == served  # not one request
    assert found["rows"] == ROWS and found["zero_team_competitions"] == ZERO
    api_status = found["api"]
    assert api_status["source"] == "live" and api_status["url"] == base_url
    assert api_status["configured"] == "50 requests per 600 s"
    said = api_status["server_said"]
    assert said["requests_available"] == 50 - 14  # 14 requests of the window's 50
    reset = datetime.fromisoformat(said["resets_at"]).timestamp()
    assert time.time() < reset <= time.time() + 602
    clock = datetime.fromtimestamp(reset, UTC).strftime("%H:%M:%S")
    assert api_status["budget"] == f"36 requests left until {clock} UTC"
    assert api_status["last_answer"]["requests_available"] == 36
    assert all(a["source"] == "live API" for a in found["assets"])
    assert f"API budget  36 requests left until {clock} UTC (as the server last said)" in screen
    assert TEST_KEY not in screen + json.dumps(found)


def test_mixed_provenance_names_both_sources(
    tmp_path: Path,
    snapshot_defs: dg.Definitions,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    pg_url: str,
    schema: str,
    output_dir: Path,
    api_double: FootballApiDouble,
) -> None:
    """Teams from the snapshot, the competition list fetched live since (one competition
    renamed, so the tables' rows change), the tables rebuilt: status says both sources where a
    table was built from both, not whichever it read first."""
    refresh(snapshot_defs, instance, echo=lambda _: None)
    api_double.data.competitions[0]["name"] = "Renamed Competition"
    job = live_defs.resolve_implicit_global_asset_job_def()
    for selection in ([raw_competitions.key], WAREHOUSE_RUN):
        assert job.execute_in_process(instance=instance, asset_selection=selection).success
    env = user_env(
        DAGSTER_HOME=str(tmp_path / "dagster_home"),  # the `instance` fixture's folder
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        FOOTBALL_OUTPUT_DIR=str(output_dir),
    )

    found, screen = status(tmp_path, env)

    both = "live API + snapshot 2025-01-31"
    assert {name: a["source"] for name, a in by_asset(found).items()} == {
        "raw_competitions": "live API",
        "raw_teams": "snapshot 2025-01-31",
        "dim_competitions": "live API",
        # Its rows are equal (no team changed): not rebuilt, still from the snapshot's run.
        "dim_teams": "snapshot 2025-01-31",
        "fact_competitions": both,
        "summary_csv": both,
        "dim_teams_history": "snapshot 2025-01-31",
        "competition_membership_history": "snapshot 2025-01-31",
    }
    assert screen.count(both) == 2
