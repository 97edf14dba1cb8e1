"""The SQL that builds dim_teams and fact_competitions equals the plain reference functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from football_assets.assets.warehouse import MEMBERSHIP_ROWS_SQL, competition_rows, team_rows_sql
from football_assets.resources.api_answers import ApiResponse
from football_assets.resources.raw_records import RawRecord
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_sql import RawPartitions, RowsFromRaw
from football_assets_tests.conftest import read_table, replace_table
from football_assets_tests.reference_rows import memberships_to_rows, teams_to_rows
from test_support.api_double import make_team

SNAPSHOT = Path(__file__).resolve().parents[1] / "football_assets" / "snapshot"


def store(warehouse: Warehouse, run_id: str, payloads: dict[str, dict[str, Any]]) -> None:
    records = [RawRecord.from_response(key, response(p)) for key, p in payloads.items()]
    warehouse.append_raw("raw_teams", run_id, records)


def response(payload: dict[str, Any]) -> ApiResponse:
    return ApiResponse(
        endpoint="/competitions/x/teams",
        url="http://api.test/competitions/x/teams",
        status=200,
        payload=payload,
        size_bytes=0,
        fetched_at=datetime.now(UTC),
        source="live",
    )


@pytest.fixture
def payloads() -> dict[str, dict[str, Any]]:
    """The snapshot's teams, plus the cases the SQL must get exactly as Python does."""
    found = {
        path.stem.removeprefix("teams_"): json.loads(path.read_text(encoding="utf-8"))
        for path in SNAPSHOT.glob("teams_*.json")
    }
    odd = [
        # The same team as in 9002 but with other details: the later competition wins.
        make_team(9_000_077, "Earlier name", founded=1900),
        make_team(9_000_078, "Tab\tand \\backslash\nand 'quote' Δυναμό 北京", area=None, tla=None),
        make_team(9_000_079, "Naive time", lastUpdated="2025-01-31T12:34:56", founded=None),
    ]
    found["9001"] = {"count": len(odd), "teams": odd}
    found["9002"] = {"count": 1, "teams": [make_team(9_000_077, "Later name", founded=1901)]}
    found["9003"] = {"count": 1, "teams": [make_team(9_000_080, "Not listed any more")]}
    return found


def test_sql_rows_equal_the_reference_rows(
    warehouse: Warehouse, payloads: dict[str, dict[str, Any]]
) -> None:
    listed = sorted(int(k) for k in payloads if k != "9003")
    competitions = {"competitions": [{"id": cid, "name": f"C{cid}"} for cid in listed]}
    store(warehouse, "run-1", payloads)
    source = RawPartitions("raw_teams", ()).competitions({str(cid): cid for cid in listed})
    replace_table(warehouse, "dim_competitions", competition_rows(competitions))

    def load_both(name: str, reference: list[dict[str, Any]], sql: str) -> None:
        replace_table(warehouse, name, reference)
        by_python = sorted(read_table(warehouse, name), key=lambda r: tuple(r.values()))
        stats = replace_table(warehouse, name, RowsFromRaw(sql, source))
        by_sql = sorted(read_table(warehouse, name), key=lambda r: tuple(r.values()))
        assert by_sql == by_python
        assert (stats.inserted, stats.updated, stats.deleted) == (0, 0, 0)

    load_both(
        "dim_teams",
        list(teams_to_rows(payloads, listed)),
        team_rows_sql(warehouse.table("dim_teams")),
    )
    load_both("fact_competitions", list(memberships_to_rows(payloads, listed)), MEMBERSHIP_ROWS_SQL)

    teams = {t["id"]: t for t in read_table(warehouse, "dim_teams")}
    assert teams[9_000_077]["name"] == "Later name" and teams[9_000_077]["founded"] == 1901
    assert teams[9_000_078]["area_id"] is None and teams[9_000_078]["tla"] is None
    assert 9_000_080 not in teams  # its competition is not listed
    assert len(teams) == 226 + 3


def test_sql_rows_replace_what_changed(warehouse: Warehouse) -> None:
    first = {"1": {"teams": [make_team(1, "A"), make_team(2, "B")]}}
    replace_table(warehouse, "dim_competitions", [{"id": 1, "name": "One"}])
    store(warehouse, "run-1", first)
    source = RawPartitions("raw_teams", ()).competitions({"1": 1})
    replace_table(
        warehouse, "dim_teams", RowsFromRaw(team_rows_sql(warehouse.table("dim_teams")), source)
    )

    later = {"1": {"teams": [make_team(2, "B renamed"), make_team(3, "C")]}}
    store(warehouse, "run-2", later)
    stats = replace_table(
        warehouse, "dim_teams", RowsFromRaw(team_rows_sql(warehouse.table("dim_teams")), source)
    )

    assert {t["id"]: t["name"] for t in read_table(warehouse, "dim_teams")} == {
        2: "B renamed",
        3: "C",
    }
    assert (stats.rows, stats.inserted, stats.updated, stats.deleted) == (2, 1, 1, 1)
