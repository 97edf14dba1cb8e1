"""The warehouse resource against a real PostgreSQL: schema, loads, transactions."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from football_assets.resources.warehouse import EmbeddedStopped, Warehouse
from football_assets.resources.warehouse_errors import WarehouseError
from football_assets.resources.warehouse_schema import validate_schema_name
from football_assets_tests.conftest import read_table, replace_table


def comp(cid: int, name: str = "League", **extra: object) -> dict[str, object]:
    return {"id": cid, "name": name, **extra}


def team(tid: int, name: str = "Team", **extra: object) -> dict[str, object]:
    return {"id": tid, "name": name, **extra}


def test_tables_live_in_the_private_schema_with_keys(warehouse: Warehouse) -> None:
    inspector = sa.inspect(warehouse.get_engine())
    tables = set(inspector.get_table_names(schema=warehouse.schema))
    assert {"raw_responses", "dim_competitions", "dim_teams", "fact_competitions"} <= tables
    assert not set(inspector.get_table_names(schema="public")) & tables
    fact_columns = {
        c["name"]: c for c in inspector.get_columns("fact_competitions", warehouse.schema)
    }
    assert str(fact_columns["team_id"]["type"]) == "INTEGER"  # the original's TEXT was a bug
    assert (
        not fact_columns["team_id"]["nullable"] and not fact_columns["competition_id"]["nullable"]
    )
    fks = {
        fk["referred_table"]: fk["constrained_columns"]
        for fk in inspector.get_foreign_keys("fact_competitions", warehouse.schema)
    }
    assert fks == {"dim_competitions": ["competition_id"], "dim_teams": ["team_id"]}
    pk = inspector.get_pk_constraint("fact_competitions", warehouse.schema)
    assert pk["constrained_columns"] == ["competition_id", "team_id"]


def test_replace_makes_the_table_exactly_the_rows(warehouse: Warehouse) -> None:
    replace_table(warehouse, "dim_teams", [team(1, "A"), team(2, "B"), team(3, "C")])
    stats = replace_table(
        warehouse, "dim_teams", [team(2, "B"), team(3, "C renamed"), team(4, "D")]
    )

    rows = {r["id"]: r["name"] for r in read_table(warehouse, "dim_teams")}
    assert rows == {2: "B", 3: "C renamed", 4: "D"}
    assert (stats.rows, stats.inserted, stats.updated, stats.deleted) == (3, 1, 1, 1)


def test_duplicate_keys_collapse_to_the_last_row(warehouse: Warehouse) -> None:
    stats = replace_table(warehouse, "dim_teams", [team(7, "first"), team(8, "x"), team(7, "last")])
    assert {r["id"]: r["name"] for r in read_table(warehouse, "dim_teams")} == {7: "last", 8: "x"}
    assert stats.rows == 2


def test_unchanged_rows_are_not_rewritten(warehouse: Warehouse) -> None:
    rows = [team(1, "A", founded=1900), team(2, "B", venue=None)]
    replace_table(warehouse, "dim_teams", rows)
    stats = replace_table(warehouse, "dim_teams", rows)
    assert (stats.inserted, stats.updated, stats.deleted) == (0, 0, 0)


def test_a_failed_load_leaves_the_previous_contents_whole(warehouse: Warehouse) -> None:
    replace_table(warehouse, "dim_teams", [team(1, "A"), team(2, "B")])

    bad = [team(3, "C"), {"id": 4, "name": None}]  # NOT NULL violation after the first row
    with pytest.raises(WarehouseError, match='null value in column "name"'):
        replace_table(warehouse, "dim_teams", bad)

    assert {r["id"]: r["name"] for r in read_table(warehouse, "dim_teams")} == {1: "A", 2: "B"}


def test_removing_a_dimension_row_removes_its_pairs(warehouse: Warehouse) -> None:
    replace_table(warehouse, "dim_competitions", [comp(10), comp(20)])
    replace_table(warehouse, "dim_teams", [team(1), team(2)])
    replace_table(
        warehouse,
        "fact_competitions",
        [
            {"competition_id": 10, "team_id": 1},
            {"competition_id": 20, "team_id": 1},
            {"competition_id": 20, "team_id": 2},
        ],
    )

    replace_table(warehouse, "dim_competitions", [comp(10)])
    replace_table(warehouse, "dim_teams", [team(1)])

    pairs = {
        (r["competition_id"], r["team_id"]) for r in read_table(warehouse, "fact_competitions")
    }
    assert pairs == {(10, 1)}


def test_a_pair_with_an_unknown_team_is_refused(warehouse: Warehouse) -> None:
    replace_table(warehouse, "dim_competitions", [comp(10)])
    replace_table(warehouse, "dim_teams", [team(1)])
    with pytest.raises(WarehouseError, match=r"Key \(team_id\)=\(99\) is not present"):
        replace_table(warehouse, "fact_competitions", [{"competition_id": 10, "team_id": 99}])
    assert read_table(warehouse, "fact_competitions") == []


def test_hostile_text_round_trips(warehouse: Warehouse) -> None:
    names = ["a\tb", "back\\slash", "new\nline", "'); DROP TABLE x; --", "\\N", "", "Ελλάδα 北京"]
    replace_table(warehouse, "dim_teams", [team(i, n, venue=n) for i, n in enumerate(names)])
    stored = {r["id"]: (r["name"], r["venue"]) for r in read_table(warehouse, "dim_teams")}
    assert stored == {i: (n, n) for i, n in enumerate(names)}


def test_raw_history_is_appended_and_the_latest_wins(warehouse: Warehouse) -> None:
    from datetime import UTC, datetime

    from football_assets.resources.api_answers import ApiResponse
    from football_assets.resources.raw_records import RawRecord

    def response(payload: dict[str, object]) -> ApiResponse:
        return ApiResponse(
            endpoint="/x",
            url="http://x",
            status=200,
            payload=payload,
            size_bytes=1,
            fetched_at=datetime.now(UTC),
            source="live",
        )

    def store(run_id: str, answers: dict[str, ApiResponse]) -> None:
        records = [RawRecord.from_response(key, answer) for key, answer in answers.items()]
        warehouse.append_raw("raw_teams", run_id, records)

    store("run-1", {"1": response({"v": 1}), "2": response({"v": 1})})
    store("run-2", {"1": response({"v": 2})})

    assert warehouse.latest_raw("raw_teams", ["1", "2", "3"]) == {"1": {"v": 2}, "2": {"v": 1}}
    history = warehouse.query(
        "SELECT count(*) AS n FROM {schema}.raw_responses WHERE partition_key = :k", k="1"
    )
    assert history[0]["n"] == 2


@pytest.mark.parametrize("name", ["x; drop table y", "Football", "public", "pg_temp", "a-b", ""])
def test_unsafe_or_reserved_schema_names_are_refused(name: str) -> None:
    with pytest.raises(WarehouseError, match="FOOTBALL_DB_SCHEMA"):
        validate_schema_name(name)


def test_non_postgres_urls_are_refused() -> None:
    with pytest.raises(WarehouseError, match="needs PostgreSQL"):
        Warehouse(database_url="sqlite:///x.db").url()


def test_a_read_only_warehouse_creates_nothing_and_writes_nothing(
    warehouse: Warehouse, pg_url: str, schema: str
) -> None:
    """What status uses: it reads what is there; a schema nobody created stays uncreated."""
    reader = Warehouse(database_url=pg_url, schema_name=schema, read_only=True)

    assert reader.present_tables() == set()
    assert reader.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = :s", s=schema) == [
        {"n": 0}
    ]
    replace_table(warehouse, "dim_teams", [team(1, "A")])  # the writer creates and loads
    assert "dim_teams" in reader.present_tables() and reader.count_rows("dim_teams") == 1
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
        reader.query(f'DELETE FROM "{schema}".dim_teams')
    reader.dispose()
    assert warehouse.count_rows("dim_teams") == 1


def test_a_read_only_warehouse_never_starts_the_embedded_server(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    reader = Warehouse(embedded_pgdata=str(pgdata), read_only=True)

    assert reader.embedded() is not None and not reader.embedded().running
    with pytest.raises(EmbeddedStopped, match="is stopped"):
        reader.present_tables()
    assert not pgdata.exists()
