"""Freshness you can see: the tables and the report warn after 26 h and fail after 50 h.

`status` applies each asset's FreshnessPolicy to its last materialization; Dagster's own
evaluator (what its freshness daemon runs for the UI's asset health) must agree with it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness_evaluator import TimeWindowFreshnessPolicyEvaluator
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time

from football_assets.definitions import defs
from football_assets.settings import load
from football_assets.status import collect
from test_support.refresh_process import cli, user_env

HOUR = 3600.0
WITH_POLICY = ["dim_competitions", "dim_teams", "fact_competitions", "summary_csv"]


def materialize_at(instance: dg.DagsterInstance, name: str, at: float) -> None:
    """A materialization of `name` recorded as if it happened at `at` (epoch seconds)."""
    with freeze_time(at):
        instance.report_runless_asset_event(dg.AssetMaterialization(name))


def dagster_says(instance: dg.DagsterInstance, name: str, now: float) -> str:
    """The state Dagster's own time-window evaluator gives the asset at `now`."""
    node = defs.resolve_asset_graph().get(dg.AssetKey(name))
    evaluator = TimeWindowFreshnessPolicyEvaluator()
    with freeze_time(now):
        state = asyncio.run(evaluator.evaluate_freshness(LoadingContextForTest(instance), node))
    return state.value


def test_the_policies_are_the_daily_schedules() -> None:
    graph = defs.resolve_asset_graph()
    for name in WITH_POLICY:
        policy = graph.get(dg.AssetKey(name)).freshness_policy
        assert policy.warn_window.to_timedelta().total_seconds() == 26 * HOUR
        assert policy.fail_window.to_timedelta().total_seconds() == 50 * HOUR
    for name in ("raw_competitions", "raw_teams"):
        assert graph.get(dg.AssetKey(name)).freshness_policy is None


@pytest.mark.parametrize(
    ("hours_later", "state"),
    [(1, "PASS"), (25.9, "PASS"), (26.1, "WARN"), (49.9, "WARN"), (50.1, "FAIL")],
)
def test_time_moving_on_turns_a_materialization_stale(
    tmp_path: Path, instance: dg.DagsterInstance, hours_later: float, state: str
) -> None:
    built = time.time()
    for name in WITH_POLICY:
        materialize_at(instance, name, built)
    config = load(
        user_env(
            DAGSTER_HOME=str(tmp_path / "dagster_home"),  # the `instance` fixture's folder
            FOOTBALL_EMBEDDED_PGDATA=str(tmp_path / "pgdata"),  # none: no database to read
        )
    )
    now = built + hours_later * HOUR

    found = {a.asset: a.freshness for a in collect(config, now=now).assets}

    assert {name: found[name] for name in WITH_POLICY} == dict.fromkeys(WITH_POLICY, state)
    assert {name: dagster_says(instance, name, now) for name in WITH_POLICY} == (
        dict.fromkeys(WITH_POLICY, state)
    )


def test_status_shows_old_materializations_warn_and_fail(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    now = time.time()
    materialize_at(instance, "dim_competitions", now - 1 * HOUR)
    materialize_at(instance, "dim_teams", now - 30 * HOUR)
    materialize_at(instance, "summary_csv", now - 51 * HOUR)  # fact_competitions: never
    env = user_env(
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        FOOTBALL_EMBEDDED_PGDATA=str(tmp_path / "pgdata"),
    )

    result = cli("status", "--json", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    found = {a["asset"]: a for a in json.loads(result.stdout)["assets"]}
    assert {name: found[name]["freshness"] for name in WITH_POLICY} == {
        "dim_competitions": "PASS",
        "dim_teams": "WARN",
        "fact_competitions": "UNKNOWN",
        "summary_csv": "FAIL",
    }
    assert found["dim_teams"]["age_seconds"] == pytest.approx(30 * HOUR, abs=120)
    later = time.time()
    assert {name: dagster_says(instance, name, later) for name in WITH_POLICY} == {
        name: found[name]["freshness"] for name in WITH_POLICY
    }
    screen = cli("status", cwd=tmp_path, env=env).stdout
    assert "WARN (warn after 26 h, fail after 50 h)" in screen
    assert "FAIL (warn after 26 h, fail after 50 h)" in screen
    assert "(30.0 h ago)" in screen and "(2.1 days ago)" in screen
