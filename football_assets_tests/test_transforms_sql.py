"""The SQL that builds dim_teams and fact_competitions equals the plain reference functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from football_assets.resources.api import ApiResponse
from football_assets.resources.warehouse import RawPartitions, RowsFromRaw, Warehouse
from football_assets.transforms import (
    MEMBERSHIP_ROWS_SQL,
    TEAM_ROWS_SQL,
    competitions_to_rows,
    memberships_to_rows,
    teams_to_rows,
)
from football_assets_tests.api_double import make_team

SNAPSHOT = Path(__file__).resolve().parents[1] / "football_assets" / "snapshot"


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
    warehouse.store_raw("raw_teams", "run-1", {k: response(p) for k, p in payloads.items()})
    source = RawPartitions("raw_teams", tuple(sorted(payloads, key=int))).only(map(str, listed))
    warehouse.replace_table("dim_competitions", competitions_to_rows(competitions))

    def load_both(name: str, reference: list[dict[str, Any]], sql: str) -> None:
        warehouse.replace_table(name, reference)
        by_python = sorted(warehouse.read_table(name), key=lambda r: tuple(r.values()))
        stats = warehouse.replace_table(name, RowsFromRaw(sql, source))
        by_sql = sorted(warehouse.read_table(name), key=lambda r: tuple(r.values()))
        assert by_sql == by_python
        assert (stats.inserted, stats.updated, stats.deleted) == (0, 0, 0)

    load_both("dim_teams", list(teams_to_rows(payloads, listed)), TEAM_ROWS_SQL)
    load_both("fact_competitions", list(memberships_to_rows(payloads, listed)), MEMBERSHIP_ROWS_SQL)

    teams = {t["id"]: t for t in warehouse.read_table("dim_teams")}
    assert teams[9_000_077]["name"] == "Later name" and teams[9_000_077]["founded"] == 1901
    assert teams[9_000_078]["area_id"] is None and teams[9_000_078]["tla"] is None
    assert 9_000_080 not in teams  # its competition is not listed
    assert len(teams) == 226 + 3


def test_sql_rows_replace_what_changed(warehouse: Warehouse) -> None:
    first = {"1": {"teams": [make_team(1, "A"), make_team(2, "B")]}}
    warehouse.replace_table("dim_competitions", [{"id": 1, "name": "One"}])
    warehouse.store_raw("raw_teams", "run-1", {k: response(p) for k, p in first.items()})
    source = RawPartitions("raw_teams", ("1",))
    warehouse.replace_table("dim_teams", RowsFromRaw(TEAM_ROWS_SQL, source))

    later = {"1": {"teams": [make_team(2, "B renamed"), make_team(3, "C")]}}
    warehouse.store_raw("raw_teams", "run-2", {k: response(p) for k, p in later.items()})
    stats = warehouse.replace_table("dim_teams", RowsFromRaw(TEAM_ROWS_SQL, source))

    assert {t["id"]: t["name"] for t in warehouse.read_table("dim_teams")} == {
        2: "B renamed",
        3: "C",
    }
    assert (stats.rows, stats.inserted, stats.updated, stats.deleted) == (2, 1, 1, 1)
