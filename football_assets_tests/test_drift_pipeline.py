"""Drift and news end to end: the API double changes its answers, refreshes run for real.

- a field the project never saw: WARN naming it and the competition, the run succeeds, and the
  next refresh of the same answers passes (it is not news any more);
- a field a table column reads, gone: a blocking failure naming the path and the column, the
  answer kept verbatim, the tables unchanged, in the raw step's run and in any later warehouse
  run (refresh, `dagster asset materialize`, the automation: the same step refuses);
- a competition that had teams and lists none: WARN naming it, once;
- an object where a list was: one line naming competition, path and expectation; nothing kept;
- the bundled snapshot: no check fails, twice over.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from football_assets.refresh import RefreshFailed, failure_line, refresh
from football_assets.resources.warehouse import Warehouse
from football_assets.staleness import WAREHOUSE_RUN
from football_assets_tests.test_resilience import actual_tables, expected_tables, whole_tables
from test_support.api_double import Fault, FootballApiDouble

PREMIER_LEAGUE = 2021
PL = "PL"  # its partition key


def check(instance: dg.DagsterInstance, asset: str, name: str) -> Any:
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data  # type: ignore[union-attr]


def partition_metadata(instance: dg.DagsterInstance, key: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_teams"), asset_partitions=[key]),
        limit=1,
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {name: entry.value for name, entry in materialization.metadata.items()}


def warnings_of(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        e.user_message
        for e in instance.all_logs(run_id)
        if e.level == logging.WARNING and e.dagster_event is None
    ]


def test_a_new_field_warns_naming_it_once_and_the_refresh_succeeds(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    for team in api_double.data.teams[PREMIER_LEAGUE]:
        team["socialMedia"] = {"x": "@club"}
    api_double.data.competitions[0]["sponsor"] = "Acme"

    report = refresh(live_defs, instance)

    teams = check(instance, "raw_teams", "raw_teams_new_fields")
    assert (teams.passed, teams.severity) == (False, dg.AssetCheckSeverity.WARN)
    said = "Premier League (PL): teams[].socialMedia, teams[].socialMedia.x"
    assert said in teams.description
    assert teams.metadata["new_fields"].value == said
    competitions = check(instance, "raw_competitions", "raw_competitions_new_fields")
    assert competitions.passed is False
    assert competitions.metadata["new_fields"].value == "GET /competitions: competitions[].sponsor"
    assert (
        "Competition Premier League (PL): the API sent fields this project has not seen "
        "before: teams[].socialMedia, teams[].socialMedia.x (kept verbatim in raw_responses; no "
        "table reads them)."
    ) in warnings_of(instance, report.run_ids[1])
    assert partition_metadata(instance, PL)["new_fields"] == (
        "teams[].socialMedia, teams[].socialMedia.x"
    )
    # Kept verbatim, and the tables built as ever.
    kept = warehouse.latest_raw("raw_teams", [PL])[PL]
    assert kept["teams"][0]["socialMedia"] == {"x": "@club"}
    assert actual_tables(warehouse) == expected_tables(api_double.data)

    # The same answers again: known now, not news.
    refresh(live_defs, instance, force=True)
    assert check(instance, "raw_teams", "raw_teams_new_fields").passed is True
    assert check(instance, "raw_competitions", "raw_competitions_new_fields").passed is True


def test_a_read_field_gone_fails_naming_path_and_column_and_no_run_changes_the_tables(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)
    before, csv_before = whole_tables(warehouse), (output_dir / "summary.csv").read_bytes()
    for team in api_double.data.teams[PREMIER_LEAGUE]:
        del team["venue"]
    gone = (
        "the API stopped sending fields the tables read (Premier League (PL): teams[].venue "
        "(feeds dim_teams.venue)); the tables keep their previous rows until the fields are "
        "back or the code stops reading them (the answers are kept verbatim in raw_responses)"
    )

    with pytest.raises(RefreshFailed) as failed:
        refresh(live_defs, instance)

    assert str(failed.value) == f"raw_teams: {gone}"
    evaluation = check(instance, "raw_teams", "raw_teams_read_fields_present")
    assert (evaluation.passed, evaluation.blocking) == (False, True)
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["columns"].value == "dim_teams.venue"
    kept = warehouse.latest_raw("raw_teams", [PL])[PL]
    assert kept["teams"] and all("venue" not in team for team in kept["teams"])
    assert partition_metadata(instance, PL)["missing_read_fields"] == (
        "teams[].venue (feeds dim_teams.venue)"
    )
    assert whole_tables(warehouse) == before

    # The tables' own run, as `dagster asset materialize` or the automation would launch it.
    job = live_defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=WAREHOUSE_RUN, raise_on_error=False
    )
    assert failure_line(result) == f"warehouse_tables: refusing to load the tables: {gone}"
    assert whole_tables(warehouse) == before
    assert (output_dir / "summary.csv").read_bytes() == csv_before

    # The field back: the next refresh takes everything.
    api_double.data.update_team(57, PREMIER_LEAGUE, venue="Emirates Stadium")
    refresh(live_defs, instance)
    assert check(instance, "raw_teams", "raw_teams_read_fields_present").passed is True
    assert actual_tables(warehouse) == expected_tables(api_double.data)


def test_a_competition_read_field_gone_stops_the_refresh_at_the_list(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)
    before = whole_tables(warehouse)
    for competition in api_double.data.competitions:
        del competition["emblem"]

    with pytest.raises(RefreshFailed) as failed:
        refresh(live_defs, instance)

    assert str(failed.value).startswith(
        "raw_competitions: the API stopped sending fields the tables read (GET /competitions: "
        "competitions[].emblem (feeds dim_competitions.emblem)); "
    )
    assert check(instance, "raw_competitions", "raw_competitions_read_fields_present").blocking
    assert whole_tables(warehouse) == before
    with pytest.raises(RefreshFailed) as again:
        refresh(live_defs, instance, competitions=[str(PREMIER_LEAGUE)], force=True)
    assert str(again.value).startswith("warehouse_tables: refusing to load the tables: ")
    assert whole_tables(warehouse) == before


def test_a_competition_that_had_teams_and_lists_none_warns_naming_it_once(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)
    had = len(api_double.data.teams[PREMIER_LEAGUE])
    api_double.data.teams[PREMIER_LEAGUE] = []

    report = refresh(live_defs, instance)

    evaluation = check(instance, "raw_teams", "competitions_have_teams")
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert evaluation.description == (
        f"Listed teams in the previous refresh, none now: Premier League (PL), {had} before"
    )
    assert evaluation.metadata["zero_team_competitions"].value == (
        "Campeonato Brasileiro Série A (BSA), Premier League (PL)"
    )
    assert (
        f"Competition Premier League (PL) lists no teams now; its previous answer listed {had}."
        in warnings_of(instance, report.run_ids[1])
    )
    assert actual_tables(warehouse) == expected_tables(api_double.data)

    refresh(live_defs, instance, force=True)  # still none: known now
    assert check(instance, "raw_teams", "competitions_have_teams").passed is True


def test_the_snapshot_refresh_shows_no_failed_check(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    # Twice, the tables rebuilt the second time: checks comparing with the previous
    # materialization or answer run against a real one.
    runs = (
        refresh(snapshot_defs, instance).run_ids
        + refresh(snapshot_defs, instance, force=True).run_ids
    )

    evaluations = [
        event.dagster_event.event_specific_data
        for run_id in runs
        for event in instance.all_logs(run_id)
        if event.dagster_event is not None
        and event.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations if not e.passed]
    assert failed == []
    every_check = set(snapshot_defs.resolve_asset_graph().asset_check_keys)
    assert {dg.AssetCheckKey(e.asset_key, e.check_name) for e in evaluations} == every_check
    # Nor any warning in the logs, but the one that says the data is the offline snapshot.
    warned = [w for run_id in runs for w in warnings_of(instance, run_id)]
    assert warned and all(w.startswith("OFFLINE: using the bundled snapshot") for w in warned)


def serve(double: FootballApiDouble, path: str, payload: Any) -> None:
    double.inject(path, Fault.body(json.dumps(payload), content_type="application/json"), 1000)


def teams_of(double: FootballApiDouble, competition: int) -> dict[str, Any]:
    status, body = double.data.render_teams(str(competition))
    assert status == 200
    return json.loads(body)


def teams_object(double: FootballApiDouble) -> Any:
    payload = teams_of(double, PREMIER_LEAGUE)
    payload["teams"] = {str(team["id"]): team for team in payload["teams"]}
    return payload


def area_list(double: FootballApiDouble) -> Any:
    payload = teams_of(double, PREMIER_LEAGUE)
    payload["teams"][3]["area"] = [payload["teams"][3]["area"]]
    return payload


def competition_list(double: FootballApiDouble) -> Any:
    payload = teams_of(double, PREMIER_LEAGUE)
    payload["competition"] = [payload["competition"]]
    return payload


def competitions_object(double: FootballApiDouble) -> Any:
    listing = json.loads(double.data.render_competitions())
    listing["competitions"] = {str(c["id"]): c for c in listing["competitions"]}
    return listing


TEAMS_AT = f"raw_teams: raw_teams partition {PL} (GET /competitions/2021/teams)"
STRUCTURE_CHANGES = [
    pytest.param(
        rf"/competitions/{PREMIER_LEAGUE}/teams$",
        teams_object,
        f"{TEAMS_AT}: unusable answer, field 'teams': a list was expected, got an object",
        id="teams-an-object",
    ),
    pytest.param(
        rf"/competitions/{PREMIER_LEAGUE}/teams$",
        area_list,
        f"{TEAMS_AT}: unusable answer, field 'teams.3.area' (team 62): an object was expected, "
        "got a list",
        id="a-teams-area-a-list",
    ),
    pytest.param(
        # The tables read an answer's competition from it (whichever key it is stored under).
        rf"/competitions/{PREMIER_LEAGUE}/teams$",
        competition_list,
        f"{TEAMS_AT}: unusable answer, field 'competition.id': None is not an id",
        id="competition-a-list",
    ),
    pytest.param(
        r"/competitions$",
        competitions_object,
        "raw_competitions: GET /competitions: unusable answer, field 'competitions': a list was "
        "expected, got an object",
        id="competitions-an-object",
    ),
]


@pytest.mark.parametrize(("path", "changed", "said"), STRUCTURE_CHANGES)
def test_an_object_where_a_list_was_is_one_line_and_changes_nothing(
    path: str,
    changed: Any,
    said: str,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)
    before, csv_before = whole_tables(warehouse), (output_dir / "summary.csv").read_bytes()
    raw_before = warehouse.count_rows("raw_responses")
    partitions = instance.get_dynamic_partitions("competitions")
    serve(api_double, path, changed(api_double))

    with pytest.raises(RefreshFailed) as failed:
        refresh(live_defs, instance)

    assert str(failed.value) == said
    # Nothing of the failed run kept (the list before it, when the teams were refused).
    stored = warehouse.count_rows("raw_responses") - raw_before
    assert stored == (0 if "raw_competitions" in said else 1)
    assert whole_tables(warehouse) == before
    assert (output_dir / "summary.csv").read_bytes() == csv_before
    assert instance.get_dynamic_partitions("competitions") == partitions


def test_a_malformed_part_no_table_reads_is_not_a_failure(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    payload = teams_of(api_double, PREMIER_LEAGUE)
    payload["filters"] = [payload["filters"]]  # what the API was asked; nothing reads it
    serve(api_double, rf"/competitions/{PREMIER_LEAGUE}/teams$", payload)

    refresh(live_defs, instance)

    assert actual_tables(warehouse) == expected_tables(api_double.data)
    news = check(instance, "raw_teams", "raw_teams_new_fields").metadata["new_fields"].value
    assert news.startswith("Premier League (PL): filters[], filters[].")
