"""The graph users see in the UI and address from `dagster asset materialize`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from football_assets.definitions import build_definitions, build_football_api, defs
from football_assets.resources.api import LiveFootballDataApi, SnapshotFootballDataApi

GRAPH = {
    "raw_competitions": ("ingestion", set()),
    "raw_teams": ("ingestion", {"raw_competitions"}),
    "dim_competitions": ("warehouse", {"raw_competitions"}),
    "dim_teams": ("warehouse", {"raw_competitions", "raw_teams"}),
    "fact_competitions": (
        "warehouse",
        {"raw_competitions", "raw_teams", "dim_competitions", "dim_teams"},
    ),
    "summary_csv": ("reporting", {"dim_competitions", "fact_competitions"}),
}


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_graph_names_groups_and_lineage() -> None:
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(GRAPH)
    for name, (group, parents) in GRAPH.items():
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == group, name
        assert {p.to_user_string() for p in node.parent_keys} == parents, name
        assert node.owners, name
        assert node.kinds, name
        assert node.description and "\n" not in node.description.strip(), name


def test_raw_teams_is_partitioned_by_competition_in_one_run_per_range() -> None:
    node = defs.resolve_asset_graph().get(dg.AssetKey("raw_teams"))
    partitions = node.partitions_def
    assert isinstance(partitions, dg.DynamicPartitionsDefinition)
    assert partitions.name == "competitions"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.pools == {"football_api"}


def test_every_table_and_the_report_are_checked() -> None:
    checked = {
        key.asset_key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys
    }
    assert {
        "raw_teams",
        "dim_competitions",
        "dim_teams",
        "fact_competitions",
        "summary_csv",
    } <= checked


def test_no_key_means_the_offline_snapshot(clean_env: None) -> None:
    assert isinstance(build_football_api(), SnapshotFootballDataApi)


def test_a_key_means_the_live_api_with_the_key_as_an_env_var(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOOTBALL_DATA_API_KEY", "k-123")
    monkeypatch.setenv("FOOTBALL_DATA_REQUESTS_PER_MINUTE", "30")
    api = build_football_api()
    assert isinstance(api, LiveFootballDataApi)
    assert api.requests_per_minute == 30
    # The key is a reference to the environment, so the UI and run config show its name only.
    assert isinstance(api.api_key, dg.EnvVar) and api.api_key == "FOOTBALL_DATA_API_KEY"
    dg.Definitions.validate_loadable(build_definitions(api))


def test_standard_cli_materializes_one_partition_and_a_range(
    clean_env: None, tmp_path: Path, pg_url: str, schema: str
) -> None:
    env = {
        **{k: v for k, v in os.environ.items()},
        "DAGSTER_HOME": str(tmp_path),
        "DATABASE_URL": pg_url,
        "FOOTBALL_DB_SCHEMA": schema,
        "FOOTBALL_OUTPUT_DIR": str(tmp_path / "out"),
    }
    base = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "football_assets.definitions",
    ]

    def materialize(*args: str) -> None:
        result = subprocess.run(
            [*base, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    materialize("--select", "raw_competitions")
    materialize("--select", "raw_teams", "--partition", "2021")
    materialize("--select", "raw_teams", "--partition-range", "2000...2152")
    materialize("--select", "dim_competitions,dim_teams,fact_competitions,summary_csv")

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        partitions = instance.get_dynamic_partitions("competitions")
        assert len(partitions) == 13
        materialized = instance.get_materialized_partitions(dg.AssetKey("raw_teams"))
        assert materialized == set(partitions)
        runs = instance.get_runs()
        # The range was one run, not thirteen.
        assert len(runs) == 4
    summary = (tmp_path / "out" / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert len(summary) == 14
