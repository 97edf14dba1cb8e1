"""Answers PostgreSQL cannot hold as sent, and answers the pipeline must refuse, end to end.

What is decided (docs/failure-behaviour.md):
- a NUL (`\\u0000`) or a lone UTF-16 surrogate in a value: the answer is kept verbatim in
  `raw_responses.payload_exact`, the tables get the value with U+FFFD in its place, the run
  WARNs naming the competition, the team and the field, and the check
  `raw_teams_values_fit_postgres` reports it (WARN); the refresh succeeds;
- an id sent as `101.0` is the id 101;
- an id outside PostgreSQL's `integer`, a team without `name`: the refresh fails with one line
  naming the competition, the team and the field; nothing of that run is stored and no table
  changes; the step is not retried (the API would give the same answer).
And summary.csv neutralizes cells spreadsheets would execute, leaving numbers alone.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from football_assets.assets.reporting import render_csv
from football_assets.payloads import PayloadError, parse_teams
from football_assets.refresh import RefreshFailed, refresh
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import read_table
from football_assets_tests.test_resilience import actual_tables, expected_tables, whole_tables
from test_support.api_double import Fault, FootballApiDouble, make_competition, make_team

COMPETITION = 2014  # La Liga in the recording
KEY = "PD"  # its partition key
NAMED = "Primera Division (PD)"  # as the checks name it


def served_teams(double: FootballApiDouble, competition: int, teams: list[dict[str, Any]]) -> str:
    """The teams answer of `competition` with `teams` appended, as JSON text (ASCII escapes)."""
    status, body = double.data.render_teams(str(competition))
    assert status == 200
    payload = json.loads(body)
    payload["teams"] += teams
    payload["count"] = len(payload["teams"])
    return json.dumps(payload)  # ensure_ascii: a lone surrogate travels as its \\u escape


def serve(double: FootballApiDouble, competition: int, text: str) -> None:
    double.inject(
        rf"/competitions/{competition}/teams$",
        Fault.body(text, content_type="application/json"),
        times=1000,
    )


def warnings_of(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        event.user_message
        for event in instance.all_logs(run_id)
        if event.level == logging.WARNING and event.dagster_event is None
    ]


def check_result(instance: dg.DagsterInstance, asset: str, name: str) -> Any:
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data  # type: ignore[union-attr]


def stored_of_run(warehouse: Warehouse, run_id: str) -> int:
    rows = warehouse.query(
        "SELECT count(*) AS n FROM {schema}.raw_responses WHERE run_id = :r", r=run_id
    )
    return int(rows[0]["n"])


@pytest.mark.parametrize(
    ("character", "escaped"),
    [("\x00", "\\u0000"), ("\ud800", "\\ud800")],
    ids=["nul", "lone-surrogate"],
)
def test_a_value_postgres_cannot_hold_is_kept_verbatim_replaced_in_tables_and_reported(
    character: str,
    escaped: str,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    team = make_team(990_001, f"Bad{character}Name FC", shortName="Bad", venue=f"Arena{character}")
    text = served_teams(api_double, COMPETITION, [team])
    assert escaped in text
    serve(api_double, COMPETITION, text)

    report = refresh(live_defs, instance)

    # The tables: the value with U+FFFD where PostgreSQL could not take the character.
    teams = {t["id"]: t for t in read_table(warehouse, "dim_teams")}
    assert teams[990_001]["name"] == "Bad\ufffdName FC"
    assert teams[990_001]["venue"] == "Arena\ufffd"
    assert (COMPETITION, 990_001) in actual_tables(warehouse)["fact_competitions"]
    # The raw answer: verbatim, the character and all.
    assert warehouse.latest_raw("raw_teams", [KEY])[KEY] == json.loads(text)
    (row,) = warehouse.query(
        "SELECT payload_exact, sanitized_fields FROM {schema}.raw_responses "
        "WHERE partition_key = :k",
        k=KEY,
    )
    assert json.loads(row["payload_exact"]) == json.loads(text)
    index = len(json.loads(text)["teams"]) - 1
    assert row["sanitized_fields"] == [f"teams.{index}.name", f"teams.{index}.venue"]
    # Said where: a WARN naming the competition, the team and the field, and the check.
    teams_run = report.run_ids[1]
    assert [w for w in warnings_of(instance, teams_run) if "PostgreSQL cannot store" in w] == [
        f"Competition {KEY}: team 990001, field '{field}' holds characters PostgreSQL "
        "cannot store (NUL or a lone surrogate); the tables get them replaced by U+FFFD, "
        "raw_responses keeps the answer verbatim (payload_exact)."
        for field in ("name", "venue")
    ]
    check = check_result(instance, "raw_teams", "raw_teams_values_fit_postgres")
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description == (
        f"Replaced characters in {NAMED}: team 990001, field 'name'; "
        f"{NAMED}: team 990001, field 'venue'"
    )
    with (output_dir / "summary.csv").open(encoding="utf-8", newline="") as handle:
        summary = {r["competition_id"]: r for r in csv.DictReader(handle)}
    assert summary[str(COMPETITION)]["number_of_teams"] == "21"


def test_an_id_sent_as_a_float_is_the_whole_number(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    team = make_team(990_101, "Float FC", founded=1886.0, area={"id": 2224.0, "name": "Spain"})
    team["id"] = 990_101.0
    text = served_teams(api_double, COMPETITION, [team])
    assert '"id": 990101.0' in text
    serve(api_double, COMPETITION, text)

    refresh(live_defs, instance)

    teams = {t["id"]: t for t in read_table(warehouse, "dim_teams")}
    assert (teams[990_101]["founded"], teams[990_101]["area_id"]) == (1886, 2224)
    assert (COMPETITION, 990_101) in actual_tables(warehouse)["fact_competitions"]


REFUSED = [
    pytest.param(
        {"id": 2**31 + 5},
        "field 'teams.20.id' (team 2147483653): 2147483653 does not fit the warehouse's integer "
        "columns (-2147483648..2147483647)",
        id="id-past-2^31",
    ),
    pytest.param(
        {"founded": -(2**31) - 1},
        "field 'teams.20.founded' (team 990201): -2147483649 does not fit the warehouse's "
        "integer columns (-2147483648..2147483647)",
        id="founded-below-integer",
    ),
    pytest.param(
        {"name": None},
        "field 'teams.20.name' (team 990201): input should be a valid string",
        id="name-null",
    ),
    pytest.param(
        {"name": ...}, "field 'teams.20.name' (team 990201): field required", id="no-name"
    ),
    pytest.param(
        {"id": 101.5},
        "field 'teams.20.id' (team 101.5): input should be a valid integer, got a number with a "
        "fractional part",
        id="fractional-id",
    ),
]


@pytest.mark.parametrize(("change", "said"), REFUSED)
def test_a_refused_answer_names_competition_team_and_field_and_stores_nothing(
    change: dict[str, Any],
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
    # Changes a partial store or load would betray, in competitions fetched before and after.
    api_double.data.rename_team(5, "Bayern Renamed")
    api_double.data.add_competition(
        make_competition(9001, "Liga Nueva", "LNU"), teams=[make_team(900_101, "Club Nuevo")]
    )
    team = make_team(990_201, "Refused FC")
    for field, value in change.items():
        if value is ...:
            del team[field]
        else:
            team[field] = value
    serve(api_double, COMPETITION, served_teams(api_double, COMPETITION, [team]))
    asked = api_double.count(f"/competitions/{COMPETITION}/teams")

    with pytest.raises(RefreshFailed) as failed:
        refresh(live_defs, instance)

    assert str(failed.value) == (
        f"raw_teams: raw_teams partition {KEY} (GET /competitions/{COMPETITION}/teams): "
        f"unusable answer, {said}"
    )
    run_id = failed.value.run_id
    assert stored_of_run(warehouse, run_id) == 0  # not even the competitions fetched before
    assert warehouse.count_rows("raw_responses") == raw_before + 1  # the new competition list
    assert whole_tables(warehouse) == before
    assert (output_dir / "summary.csv").read_bytes() == csv_before
    # Failed once: no step retry, and the API was asked once for it.
    assert api_double.count(f"/competitions/{COMPETITION}/teams") == asked + 1
    assert not [
        e
        for e in instance.all_logs(run_id)
        if e.dagster_event is not None and e.dagster_event.is_step_up_for_retry
    ]
    # The answer fixed, the next refresh takes everything.
    api_double.clear_faults()
    refresh(live_defs, instance)
    assert actual_tables(warehouse) == expected_tables(api_double.data)


# ---- summary.csv in a spreadsheet -----------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]


def test_cells_a_spreadsheet_would_execute_are_neutralized_and_numbers_are_not(
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    output_dir: Path,
) -> None:
    for index, name in enumerate(FORMULAS):
        api_double.data.add_competition(
            make_competition(8000 + index, name, f"={index}"),
            teams=[make_team(880_000 + index, "T")],
        )

    refresh(live_defs, instance)

    with (output_dir / "summary.csv").open(encoding="utf-8", newline="") as handle:
        rows = {r["competition_id"]: r for r in csv.DictReader(handle)}
    for index, name in enumerate(FORMULAS):
        row = rows[str(8000 + index)]
        assert row["competition_name"] == "'" + name
        assert row["competition_code"] == f"'={index}"
        assert row["number_of_teams"] == "1"
    # Every other cell, and every number, is written as it is.
    assert rows["2021"]["competition_name"] == "Premier League"
    assert all(
        r["competition_id"].isdigit() and r["number_of_teams"].isdigit() for r in rows.values()
    )
    event = instance.get_latest_materialization_event(dg.AssetKey("summary_csv"))
    metadata = event.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["cells_neutralized_for_spreadsheets"].value == 2 * len(FORMULAS)


def test_only_text_cells_are_neutralized() -> None:
    text, neutralized = render_csv(
        [
            {
                "competition_id": -5,
                "competition_code": "-5",
                "competition_name": "a=b",
                "number_of_teams": 0,
            }
        ]
    )
    assert text.splitlines()[1] == "-5,'-5,a=b,0"
    assert neutralized == 1


@pytest.mark.parametrize(
    ("value", "fits"),
    [(2**31 - 1, True), (2**31, False), (-(2**31), True), (-(2**31) - 1, False)],
    ids=["2^31-1", "2^31", "-2^31", "-2^31-1"],
)
def test_the_payload_check_takes_exactly_what_postgres_integer_holds(
    value: int, fits: bool, pg_url: str
) -> None:
    """The check on arrival and the warehouse's `integer` columns agree at both edges: an id
    PostgreSQL would refuse never gets stored, one it holds is never refused."""
    import psycopg

    with psycopg.connect(pg_url.replace("+psycopg", "")) as conn:
        try:
            conn.execute("SELECT %s::integer", (value,))
            postgres_holds = True
        except psycopg.errors.NumericValueOutOfRange:
            postgres_holds = False
    assert postgres_holds is fits
    for field in ("id", "founded"):
        team = make_team(990_301, "Edge FC")
        team[field] = value
        payload = {"teams": [team]}
        if fits:
            parsed = parse_teams(payload, where="edge")
            assert getattr(parsed.teams[0], field) == value
        else:
            with pytest.raises(PayloadError, match="does not fit the warehouse's integer"):
                parse_teams(payload, where="edge")
