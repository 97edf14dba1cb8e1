"""The graph users see in the UI and address from `dagster asset materialize`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from football_assets.assets.warehouse import FACT_COMPETITIONS
from football_assets.definitions import build_definitions, build_football_api, defs
from football_assets.resources.api import LiveFootballDataApi, SnapshotFootballDataApi

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "football_assets" / "snapshot"

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
    "dim_teams_history": ("warehouse", {"raw_teams"}),
    "competition_membership_history": ("warehouse", {"raw_competitions", "raw_teams"}),
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
    materialize("--select", "raw_teams", "--partition", "PL")
    materialize("--select", "raw_teams", "--partition-range", "WC...CLI")
    materialize(
        "--select",
        "dim_competitions,dim_teams,fact_competitions,dim_teams_history,"
        "competition_membership_history,summary_csv",
    )

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


# ---- what users load from Dagster ---------------------------------------------------------------


def test_a_table_loads_as_a_dataframe_and_a_raw_partition_as_its_payload(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    from football_assets.refresh import refresh

    refresh(snapshot_defs, instance, echo=lambda _: None)

    teams = snapshot_defs.load_asset_value("dim_teams", instance=instance)
    assert isinstance(teams, pd.DataFrame)
    assert len(teams) == 226 and teams["id"].is_unique
    assert "FC Bayern München" in set(teams["name"])

    payload = snapshot_defs.load_asset_value("raw_teams", partition_key="PL", instance=instance)
    served = json.loads((SNAPSHOT / "teams_2021.json").read_text(encoding="utf-8"))
    assert payload == served  # the answer itself, verbatim, not a handle

    listing = snapshot_defs.load_asset_value("raw_competitions", instance=instance)
    assert [c["id"] for c in listing["competitions"]] == [
        c["id"]
        for c in json.loads((SNAPSHOT / "competitions.json").read_text(encoding="utf-8"))[
            "competitions"
        ]
    ]


def test_an_input_annotated_with_a_dataframe_gets_the_table(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    from football_assets.refresh import refresh

    refresh(snapshot_defs, instance, echo=lambda _: None)
    seen: dict[str, int] = {}

    @dg.asset(ins={"fact_competitions": dg.AssetIn()})
    def teams_per_competition(fact_competitions: pd.DataFrame) -> dg.MaterializeResult:
        seen["pairs"] = len(fact_competitions)
        seen["competitions"] = fact_competitions["competition_id"].nunique()
        return dg.MaterializeResult()

    io_manager = (snapshot_defs.resources or {})["warehouse_io_manager"]
    assert dg.materialize(
        [teams_per_competition, FACT_COMPETITIONS],  # the table, as declared by the project
        instance=instance,
        resources={"io_manager": io_manager, "warehouse_io_manager": io_manager},
        selection=[teams_per_competition],
    ).success
    assert seen == {"pairs": 264, "competitions": 12}  # Série A (2013) has no teams


def test_runs_execute_in_process_by_default() -> None:
    # A step in its own process costs about 1.5 s of Python start-up; this graph is small and
    # mostly sequential, so every launch path (UI, CLI, sensors) runs its steps in one process.
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def is dg.in_process_executor


# ---- Dagster's dg CLI -------------------------------------------------------------------------


def dg_cli(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dg"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dg_checks_and_lists_the_definitions(clean_env: None, tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}

    checked = dg_cli("check", "defs", env=env)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr

    listed = dg_cli("list", "defs", "--json", env=env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    found = json.loads(listed.stdout)
    assets = {asset["asset_key"]: asset for asset in found["assets"]}
    assert set(assets) == set(GRAPH)
    for name, (group, parents) in GRAPH.items():
        assert assets[name]["group_name"] == group, name
        assert set(assets[name]["dependency_keys"]) == parents, name


def test_dg_launches_one_partition(
    clean_env: None, tmp_path: Path, pg_url: str, schema: str
) -> None:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "DATABASE_URL": pg_url,
        "FOOTBALL_DB_SCHEMA": schema,
        "FOOTBALL_OUTPUT_DIR": str(tmp_path / "out"),
    }
    # The partitions live in the instance: registered by raw_competitions first.
    first = dg_cli("launch", "--assets", "raw_competitions", env=env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    launched = dg_cli("launch", "--assets", "raw_teams", "--partition", "PL", env=env)
    assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-2000:]

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("raw_teams")) == {"PL"}
