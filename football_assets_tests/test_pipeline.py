"""The whole graph through Dagster, against the loopback API and a real PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from football_assets.definitions import build_definitions
from football_assets.refresh import refresh
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import live_api, read_table
from test_support.api_double import ApiData, FootballApiDouble, make_competition, make_team

SAMPLE = Path(__file__).resolve().parents[1] / "football_assets" / "snapshot"
HEADER = ["competition_id", "competition_code", "competition_name", "number_of_teams"]


def read_summary(output_dir: Path) -> list[dict[str, str]]:
    with (output_dir / "summary.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == HEADER
        return list(reader)


def expected_summary(data: ApiData) -> list[dict[str, str]]:
    """What the summary must say, derived from the API's data, not from the pipeline."""
    rows = []
    for c in data.competitions:
        team_ids = {t["id"] for t in data.teams.get(c["id"], [])}
        rows.append(
            {
                "competition_id": str(c["id"]),
                "competition_code": c.get("code") or "",
                "competition_name": c["name"],
                "number_of_teams": str(len(team_ids)),
            }
        )
    return sorted(rows, key=lambda r: (-int(r["number_of_teams"]), int(r["competition_id"])))


def table(warehouse: Warehouse, name: str) -> list[dict[str, Any]]:
    return read_table(warehouse, name)


def test_snapshot_refresh_builds_the_13_row_summary(
    snapshot_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(snapshot_defs, instance)

    rows = read_summary(output_dir)
    assert len(rows) == 13
    assert rows == expected_summary(ApiData.from_sample_dir(SAMPLE))
    serie_a = [r for r in rows if r["competition_id"] == "2013"]
    assert serie_a == [
        {
            "competition_id": "2013",
            "competition_code": "BSA",
            "competition_name": "Campeonato Brasileiro Série A",
            "number_of_teams": "0",
        }
    ]
    assert rows[-1]["competition_id"] == "2013"  # zero teams sorts last
    # 264 pairs, 226 distinct teams (the sample's README), 13 competitions.
    assert warehouse.count_rows("fact_competitions") == 264
    assert warehouse.count_rows("dim_teams") == 226
    assert warehouse.count_rows("dim_competitions") == 13
    bayern = [t for t in table(warehouse, "dim_teams") if t["id"] == 5]
    assert bayern and bayern[0]["name"] == "FC Bayern München"


def test_raw_materializations_say_snapshot_and_its_date(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(snapshot_defs, instance)
    event = instance.get_latest_materialization_event(dg.AssetKey("raw_competitions"))
    assert event is not None and event.asset_materialization is not None
    meta = event.asset_materialization.metadata
    assert meta["source"].value == "snapshot"
    assert meta["snapshot_date"].value == "2025-01-31"
    assert meta["competition_count"].value == 13


@pytest.mark.rate_limit
def test_live_refresh_records_provenance_and_budget(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)

    # Keyed by code, in id order.
    assert instance.get_dynamic_partitions("competitions") == [
        c["code"] for c in sorted(api_double.data.competitions, key=lambda c: c["id"])
    ]
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_teams"), asset_partitions=["PL"]),
        limit=1,
    ).records
    meta = records[0].asset_materialization.metadata  # type: ignore[union-attr]
    assert meta["source"].value == "live"
    assert meta["url"].value == f"{api_double.base_url}/competitions/2021/teams"
    assert meta["http_status"].value == 200
    assert meta["teams_in_this_competition"].value == 20
    assert meta["competition"].value == "Premier League" and meta["competition_code"].value == "PL"
    assert meta["bytes"].value > 1000
    assert 0 <= meta["api_requests_available_minute"].value < 10
    assert api_double.refused_count() == 0
    assert read_summary(output_dir) == expected_summary(api_double.data)


def test_tables_name_their_relation_and_raw_answers_their_budget_wait(
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    limiter_dir: Path,
    output_dir: Path,
    instance: dg.DagsterInstance,
) -> None:
    # Two requests per window for fourteen: the budget makes the run wait after every other
    # request (six times), unless requests took a window each on their own.
    tight = live_api(api_double, limiter_dir, requests_per_minute=2)
    refresh(build_definitions(tight, warehouse, OutputLocation(location=str(output_dir))), instance)

    for name in ("dim_competitions", "dim_teams", "fact_competitions"):
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        meta = event.asset_materialization.metadata  # type: ignore[union-attr]
        assert meta["dagster/relation_identifier"].value == f"{warehouse.schema}.{name}"
        assert meta["dagster/row_count"].value == warehouse.count_rows(name)
        assert [c.name for c in meta["dagster/column_schema"].value.columns] == [
            c.name for c in warehouse.table(name).columns
        ]
    waits = {}
    for key in instance.get_dynamic_partitions("competitions"):
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_teams"), asset_partitions=[key]),
            limit=1,
        ).records
        meta = record.asset_materialization.metadata  # type: ignore[union-attr]
        waits[key] = meta["rate_limit_wait_seconds"].value
    assert len(waits) == 13 and all(wait >= 0 for wait in waits.values())
    assert sum(wait > 0 for wait in waits.values()) >= 2, waits
    assert api_double.refused_count() == 0


def test_rerun_changes_and_duplicates_nothing(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)
    before = {
        name: table(warehouse, name)
        for name in ("dim_competitions", "dim_teams", "fact_competitions")
    }
    csv_before = (output_dir / "summary.csv").read_bytes()

    rerun = refresh(live_defs, instance)

    # Unchanged raw data: the tables and the report are not rebuilt at all (issue 6).
    assert rerun.skipped is not None and "unchanged" in rerun.skipped
    for name, rows in before.items():
        assert table(warehouse, name) == rows, name
    assert (output_dir / "summary.csv").read_bytes() == csv_before

    # Forced, the loads run and find nothing to insert, update or delete: equal rows are not
    # written and record no new materialization (issue 17), so the last one is the first build's.
    first = instance.get_latest_materialization_event(dg.AssetKey("dim_teams"))
    forced = refresh(live_defs, instance, force=True)

    assert forced.skipped is None and forced.changed == []
    for name, rows in before.items():
        assert table(warehouse, name) == rows, name
    event = instance.get_latest_materialization_event(dg.AssetKey("dim_teams"))
    assert event is not None and first is not None and event.run_id == first.run_id
    assert (output_dir / "summary.csv").read_bytes() == csv_before


def test_upstream_changes_are_mirrored_exactly(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)
    data = api_double.data
    # Upstream: Arsenal renamed everywhere, a team leaves the Premier League but stays in the
    # Champions League, Ligue 1 vanishes, a new competition appears with one new team and one
    # existing (shared) team.
    data.rename_team(57, "Arsenal Football Club")
    in_both = sorted(data.team_ids(2021) & data.team_ids(2001) - {57})
    leaver = in_both[0]
    data.remove_team(2021, leaver)
    data.remove_competition(2015)
    data.add_competition(
        make_competition(9001, "Liga Nueva", "LNU"),
        teams=[make_team(900101, "Club Nuevo"), next(t for t in data.teams[2014] if t["id"] == 86)],
    )

    refresh(live_defs, instance)

    assert read_summary(output_dir) == expected_summary(data)
    teams = {t["id"]: t for t in table(warehouse, "dim_teams")}
    assert teams[57]["name"] == "Arsenal Football Club"
    pairs = {(r["competition_id"], r["team_id"]) for r in table(warehouse, "fact_competitions")}
    expected_pairs = {
        (c["id"], t["id"]) for c in data.competitions for t in data.teams.get(c["id"], [])
    }
    assert pairs == expected_pairs
    assert (2021, leaver) not in pairs and (2001, leaver) in pairs
    assert leaver in {t["id"] for t in table(warehouse, "dim_teams")}
    assert not any(cid == 2015 for cid, _ in pairs)
    assert 2015 not in {c["id"] for c in table(warehouse, "dim_competitions")}
    # Teams that played only in Ligue 1 are gone; shared ones stay.
    assert set(teams) == {t["id"] for c in data.competitions for t in data.teams.get(c["id"], [])}
    assert "FL1" not in instance.get_dynamic_partitions("competitions")
    assert "LNU" in instance.get_dynamic_partitions("competitions")
    # History stays in Dagster: the vanished competition's materializations are still there.
    old = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_teams"), asset_partitions=["FL1"]),
        limit=5,
    ).records
    assert old


HOSTILE = [
    'Quote "United", FC',
    "Line\nBreak\r\nCity",
    "'); DROP TABLE football.dim_teams; --",
    "Δυναμό Κιέβου · 北京国安 · الأهلي",
    "Tab\tand \\backslash, comma",
]


def test_hostile_names_are_stored_and_exported_verbatim(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    data = api_double.data
    for index, name in enumerate(HOSTILE):
        data.add_competition(
            make_competition(8000 + index, name, f'X"{index},'),
            teams=[make_team(880000 + index, name)],
        )

    refresh(live_defs, instance)

    rows = {r["competition_id"]: r for r in read_summary(output_dir)}
    for index, name in enumerate(HOSTILE):
        assert rows[str(8000 + index)]["competition_name"] == name
        assert rows[str(8000 + index)]["competition_code"] == f'X"{index},'
        assert rows[str(8000 + index)]["number_of_teams"] == "1"
    teams = {t["id"]: t["name"] for t in table(warehouse, "dim_teams")}
    for index, name in enumerate(HOSTILE):
        assert teams[880000 + index] == name
    # The raw store keeps exactly what the API served.
    for index in range(len(HOSTILE)):
        key = str(8000 + index)
        status, served = api_double.data.render_teams(key)
        assert status == 200
        assert warehouse.latest_raw("raw_teams", [key])[key] == json.loads(served)
    summary = instance.get_latest_materialization_event(dg.AssetKey("summary_csv"))
    markdown = summary.asset_materialization.metadata["summary"].value  # type: ignore[union-attr]
    assert "Δυναμό Κιέβου" in markdown and markdown.count("\n") == len(rows) + 1


def test_zero_team_competition_between_seasons_passes_naming_it(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    # Série A listed no teams before either (never, here): known, not news, so the check
    # passes with the fact in its metadata (test_drift: it WARNs when teams disappear).
    refresh(snapshot_defs, instance)
    key = dg.AssetCheckKey(dg.AssetKey("raw_teams"), "competitions_have_teams")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
    assert evaluation.passed is True
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "Zero teams: Campeonato Brasileiro Série A (BSA)" in evaluation.description
    assert evaluation.metadata["zero_team_competitions"].value == (
        "Campeonato Brasileiro Série A (BSA)"
    )
    assert evaluation.metadata["lost_all_teams"].value == "none"


@pytest.mark.parametrize(
    "check_name",
    [
        "dim_teams_key_unique",
        "fact_competitions_references_resolve",
        "summary_has_every_competition",
    ],
)
def test_integrity_checks_pass_on_a_good_load(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path, check_name: str
) -> None:
    refresh(snapshot_defs, instance)
    asset = {
        "dim_teams_key_unique": "dim_teams",
        "fact_competitions_references_resolve": "fact_competitions",
        "summary_has_every_competition": "summary_csv",
    }[check_name]
    key = dg.AssetCheckKey(dg.AssetKey(asset), check_name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert record.event.dagster_event.event_specific_data.passed is True  # type: ignore[union-attr]


def test_an_empty_competition_list_does_not_wipe_the_warehouse(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    from football_assets.refresh import RefreshFailed

    refresh(live_defs, instance)
    csv_before = (output_dir / "summary.csv").read_bytes()
    api_double.data.competitions.clear()

    with pytest.raises(RefreshFailed, match="listed no competitions"):
        refresh(live_defs, instance)

    assert warehouse.count_rows("dim_competitions") == 13
    assert warehouse.count_rows("fact_competitions") == 264
    assert (output_dir / "summary.csv").read_bytes() == csv_before
    assert len(instance.get_dynamic_partitions("competitions")) == 13
