"""The competitions partitions are keyed by code (PL, BL1), by id where a competition has no
usable code of its own; `--competition` takes either; an instance keyed by ids migrates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from football_assets.assets.ingestion import PARTITIONS
from football_assets.automation import new_competitions_sensor
from football_assets.competition_keys import (
    UnknownCompetition,
    answer_is_about,
    competition_keys,
    resolve,
)
from football_assets.payloads import PayloadError
from football_assets.refresh import UnknownCompetitions, refresh
from football_assets.resources.api_answers import ApiResponse
from football_assets.resources.raw_records import RawRecord, payload_sha256
from football_assets.resources.warehouse import Warehouse
from football_assets.staleness import WAREHOUSE_RUN
from football_assets_tests.conftest import live_api
from football_assets_tests.test_resilience import actual_tables, expected_tables, whole_tables
from test_support.api_double import ApiData, FootballApiDouble, make_competition, make_team

SNAPSHOT = Path(__file__).resolve().parents[1] / "football_assets" / "snapshot"
# The recording's competitions in id order (2000 ... 2152): the order Dagster lists them in.
CODES = ["WC", "CL", "BL1", "DED", "BSA", "PD", "FL1", "ELC", "PPL", "EC", "SA", "PL", "CLI"]
RENAMED = "partitions renamed from ids to codes"


def listing(*items: tuple[int, str | None]) -> dict[str, Any]:
    return {"competitions": [{"id": cid, "name": f"C{cid}", "code": code} for cid, code in items]}


def test_keys_are_codes_and_fall_back_to_ids_whatever_the_order() -> None:
    items = [
        (2021, "PL"),
        (9001, None),  # no code
        (9002, "BSA"),
        (9003, "bsa"),  # the same code but for its case: both fall back
        (9004, "A/B"),  # not plain: a "/" would need escaping in every URL
        (9005, 'Süper "L"'),
        (9006, "2021"),  # digits: another competition's id
        (9007, ""),
    ]
    expected = {
        "PL": 2021,
        "9001": 9001,
        "9002": 9002,
        "9003": 9003,
        "9004": 9004,
        "9005": 9005,
        "9006": 9006,
        "9007": 9007,
    }
    assert competition_keys(listing(*items)) == expected
    assert list(competition_keys(listing(*items))) == list(expected)  # id order
    assert competition_keys(listing(*reversed(items))) == expected


def test_a_competition_is_named_by_its_code_in_any_case_or_by_its_id() -> None:
    keys = {"PL": 2021, "PD": 2014, "9001": 9001}
    registered = ["PD", "PL", "9001"]
    assert resolve(["pl", "2014", "PL", "9001"], registered, keys) == ["PL", "PD", "9001"]
    # An instance still keyed by ids (no full refresh since the codes) takes codes too.
    assert resolve(["pl", "2014"], ["2014", "2021"], keys) == ["2021", "2014"]
    with pytest.raises(UnknownCompetition) as unknown:
        resolve(["PL", "XYZ"], registered, keys)
    assert str(unknown.value) == (
        "unknown competition XYZ; valid: PD, PL, 9001 (a code in any case, or a competition's id)"
    )
    with pytest.raises(UnknownCompetition, match=r"^unknown competition 9999; valid: PD, PL, "):
        resolve(["9999"], registered, keys)


def test_refresh_registers_codes_and_takes_a_code_or_an_id(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, warehouse: Warehouse
) -> None:
    refresh(snapshot_defs, instance, echo=lambda _: None)
    # What the UI lists: the asset's partitions, as Dagster resolves them.
    partitions_def = snapshot_defs.resolve_assets_def("raw_teams").partitions_def
    assert partitions_def is not None
    assert partitions_def.get_partition_keys(dynamic_partitions_store=instance) == CODES
    assert instance.get_materialized_partitions(dg.AssetKey("raw_teams")) == set(CODES)
    stored = {r["partition_key"] for r in raw_rows(warehouse, "raw_teams")}
    assert stored == set(CODES)

    report = refresh(snapshot_defs, instance, competitions=["pl", "2014"], echo=lambda _: None)
    assert report.partitions == ["PD", "PL"]

    with pytest.raises(UnknownCompetitions) as unknown:
        refresh(snapshot_defs, instance, competitions=["PL", "XYZ"], echo=lambda _: None)
    assert str(unknown.value) == (
        f"unknown competition XYZ; valid: {', '.join(CODES)} "
        "(a code in any case, or a competition's id)"
    )


def test_competitions_without_a_code_of_their_own_are_keyed_and_fetched_by_id(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_data: ApiData,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
) -> None:
    for competition in list(api_data.competitions):
        api_data.remove_competition(competition["id"])
    api_data.add_competition(make_competition(2021, "Premier League", "PL"), [make_team(1, "A")])
    api_data.add_competition(
        {**make_competition(9001, "Sin código", "X"), "code": None}, [make_team(2, "B")]
    )
    api_data.add_competition(make_competition(9002, "Copa A", "CPA"), [make_team(3, "C")])
    api_data.add_competition(make_competition(9003, "Copa B", "CPA"), [make_team(4, "D")])

    refresh(live_defs, instance, echo=lambda _: None)

    assert instance.get_dynamic_partitions(PARTITIONS) == ["PL", "9001", "9002", "9003"]
    assert actual_tables(warehouse)["fact_competitions"] == {
        (2021, 1),
        (9001, 2),
        (9002, 3),
        (9003, 4),
    }
    urls = {r["partition_key"]: r["url"] for r in raw_rows(warehouse, "raw_teams")}
    assert urls["PL"].endswith("/competitions/2021/teams")
    assert urls["9003"].endswith("/competitions/9003/teams")


# ---- an instance keyed by ids, as the code before the codes left it --------------------------


def answer(payload: dict[str, Any], endpoint: str) -> ApiResponse:
    return ApiResponse(
        endpoint=endpoint,
        url=f"snapshot://{endpoint}",
        status=200,
        payload=payload,
        size_bytes=0,
        fetched_at=datetime.now(UTC),
        source="snapshot",
    )


def keyed_by_ids(instance: dg.DagsterInstance, warehouse: Warehouse) -> None:
    """Partitions 2000 ... 2152, each with its answer stored and materialized under its id."""
    competitions = json.loads((SNAPSHOT / "competitions.json").read_text(encoding="utf-8"))
    ids = sorted(c["id"] for c in competitions["competitions"])
    instance.add_dynamic_partitions(PARTITIONS, [str(i) for i in ids])
    listed = answer(competitions, "/competitions")
    warehouse.append_raw("raw_competitions", "old", [RawRecord.from_response("", listed)])
    teams = [
        RawRecord.from_response(
            str(i),
            answer(
                json.loads((SNAPSHOT / f"teams_{i}.json").read_text()), f"/competitions/{i}/teams"
            ),
        )
        for i in ids
    ]
    warehouse.append_raw("raw_teams", "old", teams)
    for i in ids:
        instance.report_runless_asset_event(dg.AssetMaterialization("raw_teams", partition=str(i)))


def raw_rows(warehouse: Warehouse, asset: str) -> list[dict[str, Any]]:
    with warehouse.get_engine().connect() as conn:
        cursor = conn.exec_driver_sql(
            f"SELECT partition_key, url FROM {warehouse.schema}.raw_responses WHERE asset = %s",
            (asset,),
        )
        return [dict(r._mapping) for r in cursor]


def renamed_lines(instance: dg.DagsterInstance) -> list[str]:
    return [
        entry.user_message
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
        if RENAMED in (entry.user_message or "")
    ]


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, *keys: dg.AssetKey) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=list(keys)).success


def test_an_instance_keyed_by_ids_migrates_to_codes_with_its_answers(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, warehouse: Warehouse
) -> None:
    keyed_by_ids(instance, warehouse)
    materialize(snapshot_defs, instance, *WAREHOUSE_RUN)
    before = whole_tables(warehouse)
    assert actual_tables(warehouse) == expected_tables(ApiData.from_sample_dir())

    # The first run of the new code renames the partitions, saying so once.
    materialize(snapshot_defs, instance, dg.AssetKey("raw_competitions"))
    assert instance.get_dynamic_partitions(PARTITIONS) == CODES
    (line,) = renamed_lines(instance)
    assert line.startswith(f"{RENAMED}: 2000 → WC, 2001 → CL, ")
    assert "2021 → PL" in line
    # No teams fetched under the codes yet: the answers stored under the ids still count.
    materialize(snapshot_defs, instance, *WAREHOUSE_RUN)
    assert whole_tables(warehouse) == before

    refresh(snapshot_defs, instance, force=True, echo=lambda _: None)
    assert whole_tables(warehouse) == before  # both keys hold PL's answers: one row each
    assert instance.get_dynamic_partitions(PARTITIONS) == CODES
    assert len(renamed_lines(instance)) == 1


def test_an_instance_keyed_by_ids_takes_a_code_before_it_migrates(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, warehouse: Warehouse
) -> None:
    keyed_by_ids(instance, warehouse)
    report = refresh(snapshot_defs, instance, competitions=["pl"], echo=lambda _: None)
    assert report.partitions == ["2021"]  # the key it has; the next full refresh renames it
    assert actual_tables(warehouse) == expected_tables(ApiData.from_sample_dir())


def test_an_answer_about_another_competition_is_refused() -> None:
    asked = "raw_teams partition PL (GET /competitions/2021/teams)"
    answer_is_about({"competition": {"id": 2021.0}, "teams": []}, 2021, asked)  # JSON's 2021
    with pytest.raises(PayloadError) as other:
        answer_is_about({"competition": {"id": 2016}, "teams": []}, 2021, asked)
    assert str(other.value) == f"{asked}: unusable answer, it is about competition 2016, not 2021"
    with pytest.raises(PayloadError, match=r"field 'competition.id': None is not an id$"):
        answer_is_about({"teams": []}, 2021, asked)


def test_the_new_competitions_sensor_has_raw_competitions_rename_an_instance_keyed_by_ids(
    api_double: FootballApiDouble, limiter_dir: Path, instance: dg.DagsterInstance
) -> None:
    listed = json.loads(api_double.data.render_competitions())
    ids = sorted(str(c["id"]) for c in listed["competitions"])
    instance.add_dynamic_partitions(PARTITIONS, ids)
    for key in ids:
        instance.report_runless_asset_event(dg.AssetMaterialization("raw_teams", partition=key))
    # raw_competitions holds this very answer already: only the stale keys call for its run.
    instance.report_runless_asset_event(
        dg.AssetMaterialization("raw_competitions", tags={DATA_VERSION_TAG: payload_sha256(listed)})
    )
    with dg.build_sensor_context(
        instance=instance, resources={"football_api": live_api(api_double, limiter_dir)}
    ) as context:
        result = new_competitions_sensor(context)

    assert isinstance(result, dg.SensorResult)
    requested = [r.asset_selection for r in result.run_requests or []]
    assert [dg.AssetKey("raw_competitions")] in requested


def test_a_competition_named_before_any_refresh_says_to_run_one(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    with pytest.raises(UnknownCompetitions) as unknown:
        refresh(snapshot_defs, instance, competitions=["PL"], echo=lambda _: None)
    assert str(unknown.value) == "unknown competition PL: none known yet (run a full refresh first)"
    assert instance.get_runs_count() == 0


def test_an_answer_counts_for_the_competition_it_says_it_is_about(warehouse: Warehouse) -> None:
    def store(key: str, payload: dict[str, Any]) -> None:
        record = RawRecord.from_response(key, answer(payload, "/competitions/x/teams"))
        warehouse.append_raw("raw_teams", "run", [record])

    store("PL", {"competition": {"id": 2021.0}, "n": "PL as 2021.0"})  # JSON's 2021
    store("2002", {"n": "an older version's answer under the id, without competition"})
    store("BL1", {"competition": {"id": 2021}, "n": "about PL, stored under BL1"})  # later
    store("SA", {"competition": {"id": "2019"}, "n": "an id that is a string"})
    store("SA", {"competition": {"id": 1e10}, "n": "an id out of range"})
    store("FL1", {"competition": {"id": 2015.5}, "n": "not a whole number"})

    latest = warehouse.latest_raw("raw_teams", {"PL": 2021, "BL1": 2002, "SA": 2019, "FL1": 2015})

    assert {key: payload["n"] for key, payload in latest.items()} == {
        "PL": "PL as 2021.0",  # not the later one under BL1: only PL's keys are read
        "BL1": "an older version's answer under the id, without competition",
    }
