"""Healing: whatever part of the declared schema is dropped by hand (a table with CASCADE, a
foreign key, an index, a primary key, a column, a NOT NULL) comes back whole on the next set-up
or refresh, compared constraint by constraint with a fresh schema; or the set-up refuses in one
line naming what is missing and what to do, changing nothing.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg
import pytest

from football_assets.refresh import refresh
from football_assets.resources.budget import open_budget
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_errors import LoadRefused
from football_assets.resources.warehouse_schema import tables

# Every table the warehouse declares (history tables included, when there are any).
WAREHOUSE_TABLES = [table.name for table in tables("football").sorted_tables]


def full_schema(pg_url: str, schema: str) -> dict[str, Any]:
    """Everything PostgreSQL says about the schema's tables: columns (type, NOT NULL, default,
    identity), every constraint's definition, every index's definition, comments."""
    queries = {
        "columns": """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.attidentity, pg_get_expr(d.adbin, d.adrelid),
                   col_description(c.oid, a.attnum)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE n.nspname = %(s)s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped""",
        "constraints": """
            SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s""",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s",
        "tables": """
            SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %(s)s AND c.relkind = 'r'""",
    }
    with psycopg.connect(pg_url.replace("+psycopg", "")) as conn:
        return {
            name: sorted(map(tuple, conn.execute(query, {"s": schema}).fetchall()))
            for name, query in queries.items()
        }


def run_sql(pg_url: str, *statements: str) -> None:
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def set_up(pg_url: str, schema: str) -> list[str]:
    """What a refresh's first connection does: set the warehouse up; returns what it restored."""
    warehouse = Warehouse(database_url=pg_url, schema_name=schema)
    try:
        warehouse.get_engine()
        return warehouse.restored
    finally:
        warehouse.dispose()


@pytest.fixture
def declared(pg_url: str, schema: str) -> dict[str, Any]:
    """The schema as a fresh set-up creates it from the declarations."""
    created = [f"schema {schema}", *(f"table {schema}.{t}" for t in WAREHOUSE_TABLES)]
    assert sorted(set_up(pg_url, schema)) == sorted(created)
    fresh = full_schema(pg_url, schema)
    definitions = [c[2] for c in fresh["constraints"] if c[0] == "fact_competitions"]
    assert sum("FOREIGN KEY" in d for d in definitions) == 2
    assert {t for t, *_ in fresh["tables"]} == set(WAREHOUSE_TABLES)
    assert {"raw_responses", "dim_competitions", "dim_teams", "fact_competitions"} <= {
        t for t, *_ in fresh["tables"]
    }
    return fresh


@pytest.mark.parametrize("dropped", WAREHOUSE_TABLES)
def test_a_table_dropped_with_cascade_comes_back_with_every_constraint(
    pg_url: str, schema: str, declared: dict[str, Any], dropped: str
) -> None:
    run_sql(pg_url, f"DROP TABLE {schema}.{dropped} CASCADE")
    assert full_schema(pg_url, schema) != declared

    restored = set_up(pg_url, schema)

    assert full_schema(pg_url, schema) == declared
    assert f"table {schema}.{dropped}" in restored
    if dropped in ("dim_competitions", "dim_teams"):  # CASCADE took fact_competitions' key
        assert any(r.startswith(f"foreign key {schema}.fact_competitions") for r in restored)
    assert set_up(pg_url, schema) == []  # whole: nothing left to restore


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (
            "ALTER TABLE {s}.fact_competitions DROP CONSTRAINT fact_competitions_team_id_fkey",
            "foreign key {s}.fact_competitions(team_id) -> dim_teams(id)",
        ),
        ("DROP INDEX {s}.fact_competitions_team", "index {s}.fact_competitions_team(team_id)"),
        ("DROP INDEX {s}.raw_responses_latest", "index {s}.raw_responses_latest("),
        ("ALTER TABLE {s}.dim_teams DROP CONSTRAINT dim_teams_pkey CASCADE", "primary key"),
        ("ALTER TABLE {s}.fact_competitions DROP CONSTRAINT fact_competitions_pkey", "primary"),
        ("ALTER TABLE {s}.dim_teams ALTER COLUMN name DROP NOT NULL", "NOT NULL of"),
        ("ALTER TABLE {s}.raw_responses DROP COLUMN sanitized_fields", "column"),
        (
            "ALTER TABLE {s}.fact_competitions DROP CONSTRAINT fact_competitions_team_id_fkey;"
            "ALTER TABLE {s}.fact_competitions ADD FOREIGN KEY (team_id) REFERENCES {s}.dim_teams",
            "foreign key {s}.fact_competitions(team_id)",  # without its ON DELETE CASCADE
        ),
        ("DROP SCHEMA {s} CASCADE", "schema {s}"),
    ],
)
def test_a_key_index_or_column_dropped_comes_back(
    pg_url: str, schema: str, declared: dict[str, Any], damage: str, named: str
) -> None:
    for statement in damage.format(s=schema).split(";"):
        run_sql(pg_url, statement)
    assert full_schema(pg_url, schema) != declared

    restored = set_up(pg_url, schema)

    assert any(item.startswith(named.format(s=schema)) for item in restored), restored
    after = full_schema(pg_url, schema)
    assert after == declared
    assert set_up(pg_url, schema) == []


def row(schema: str, table: str, **values: Any) -> dict[str, Any]:
    return {column.name: None for column in tables(schema).tables[f"{schema}.{table}"].columns} | (
        values
    )


def test_rows_that_forbid_a_restore_leave_it_out_then_the_load_refuses_in_one_line(
    pg_url: str, schema: str, declared: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """raw_responses is the answers' history: its rows are never deleted to restore a key.
    Connecting restores what it can (reads go on); the next load refuses, changing nothing."""
    run_sql(
        pg_url,
        f"DROP INDEX {schema}.raw_responses_latest",
        f"ALTER TABLE {schema}.raw_responses ALTER COLUMN url DROP NOT NULL",
        f"INSERT INTO {schema}.raw_responses (asset, partition_key, run_id, fetched_at, source,"
        " url, http_status, payload_sha256, payload) VALUES ('raw_competitions', '', 'r', now(),"
        " 'live', NULL, 200, 'x', '{}')",
    )
    warehouse = Warehouse(database_url=pg_url, schema_name=schema)

    assert [r.split("(")[0] for r in set_up(pg_url, schema)] == [
        f"index {schema}.raw_responses_latest"
    ]
    missing = f"The NOT NULL of {schema}.raw_responses.url is missing and cannot be restored"
    assert [r.getMessage() for r in caplog.records if missing in r.getMessage()]
    damaged = full_schema(pg_url, schema)

    with pytest.raises(LoadRefused) as refused:
        warehouse.load_tables(
            [("dim_competitions", [row(schema, "dim_competitions", id=1, name="A")])]
        )

    line = str(refused.value)
    assert "\n" not in line
    assert line.startswith(missing)
    assert line.endswith(
        f"delete or fix the rows of {schema}.raw_responses that break it, then re-run; "
        "every table keeps its previous contents"
    )
    assert warehouse.count_rows("dim_competitions") == 0
    assert full_schema(pg_url, schema) == damaged

    run_sql(pg_url, f"DELETE FROM {schema}.raw_responses WHERE url IS NULL")  # as the line says
    warehouse.load_tables([("dim_competitions", [row(schema, "dim_competitions", id=1, name="A")])])
    warehouse.dispose()
    assert full_schema(pg_url, schema) == declared


def test_derived_rows_that_forbid_a_key_are_emptied_by_the_load_that_reloads_them(
    pg_url: str, schema: str, declared: dict[str, Any]
) -> None:
    """fact_competitions is rebuilt from the raw answers: its orphans do not block healing."""
    run_sql(
        pg_url,
        f"INSERT INTO {schema}.dim_competitions (id, name) VALUES (2021, 'Premier League')",
        f"INSERT INTO {schema}.dim_teams (id, name) VALUES (57, 'Arsenal FC')",
        f"INSERT INTO {schema}.fact_competitions VALUES (2021, 57)",
        f"DROP TABLE {schema}.dim_teams CASCADE",
    )
    # Connecting brings the table back; the foreign key waits for the load.
    assert set_up(pg_url, schema) == [f"table {schema}.dim_teams"]
    warehouse = Warehouse(database_url=pg_url, schema_name=schema)

    warehouse.load_tables(
        [
            ("dim_competitions", [row(schema, "dim_competitions", id=2021, name="PL")]),
            ("dim_teams", [row(schema, "dim_teams", id=58, name="Aston Villa FC")]),
            ("fact_competitions", [{"competition_id": 2021, "team_id": 58}]),
        ]
    )

    assert full_schema(pg_url, schema) == declared
    assert warehouse.restored == [
        f"foreign key {schema}.fact_competitions(team_id) -> dim_teams(id) "
        f"(emptied {schema}.fact_competitions first, its rows broke it)"
    ]
    assert [
        tuple(r.values()) for r in warehouse.query("SELECT * FROM {schema}.fact_competitions")
    ] == [(2021, 58)]
    warehouse.dispose()


def test_a_refresh_after_drop_table_cascade_restores_both_foreign_keys_and_the_rows(
    snapshot_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
    pg_url: str,
    schema: str,
) -> None:
    """The reported case: DROP TABLE dim_teams CASCADE, then refresh."""
    refresh(snapshot_defs, instance, echo=lambda line: None)
    declared = full_schema(pg_url, schema)
    teams = warehouse.count_rows("dim_teams")
    pairs = warehouse.count_rows("fact_competitions")
    warehouse.dispose()
    run_sql(pg_url, f"DROP TABLE {schema}.dim_teams CASCADE")

    report = refresh(snapshot_defs, instance, echo=lambda line: None)

    assert report.skipped is None  # the emptied table was rebuilt
    assert full_schema(pg_url, schema) == declared
    assert warehouse.count_rows("dim_teams") == teams > 0
    assert warehouse.count_rows("fact_competitions") == pairs > 0
    # ...and the runs that restored it say so in their logs: the table at the first
    # connection, the foreign key with the load that emptied and reloaded the orphaned pairs.
    said = " ".join(
        record.user_message
        for run_id in report.run_ids
        for record in instance.all_logs(run_id)
        if "Restored in" in record.user_message
    )
    assert f"table {schema}.dim_teams" in said
    assert (
        f"foreign key {schema}.fact_competitions(team_id) -> dim_teams(id) "
        f"(emptied {schema}.fact_competitions first, its rows broke it)"
    ) in said


def test_a_table_dropped_between_two_runs_is_back_before_the_second_run_reads_it(
    snapshot_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
    pg_url: str,
    schema: str,
) -> None:
    """A run's Warehouse resources verify the schema once between them; the next run of the
    same process verifies it again: a run that only reads (a check) finds the table back."""
    refresh(snapshot_defs, instance, echo=lambda line: None)
    warehouse.dispose()
    run_sql(pg_url, f"DROP TABLE {schema}.dim_teams CASCADE")
    key = dg.AssetCheckKey(dg.AssetKey("dim_teams"), "dim_teams_key_unique")
    job = snapshot_defs.resolve_implicit_global_asset_job_def()

    result = job.get_subset(asset_selection=set(), asset_check_selection={key}).execute_in_process(
        instance=instance, raise_on_error=False
    )

    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["rows"].value == 0
    assert "dim_teams" in warehouse.present_tables()


def open_one(pg_url: str, schema: str) -> None:
    """Open (and close) a PostgreSQL request budget, as a refresh's first request does."""
    open_budget(
        base_url="http://x",
        api_key="k",
        limit=5,
        window_seconds=1.0,
        database_url=pg_url,
        schema=schema,
    ).close()


def budget_schema(pg_url: str, schema: str) -> dict[str, Any]:
    found = full_schema(pg_url, schema)
    budget = {"budget_log", "budget_server"}
    return {name: [row for row in rows if row[0] in budget] for name, rows in found.items()}


@pytest.mark.parametrize(
    "damage",
    [
        "DROP TABLE {s}.budget_log",
        "DROP TABLE {s}.budget_server",
        "DROP INDEX {s}.budget_log_stamp",
        "ALTER TABLE {s}.budget_server DROP CONSTRAINT budget_server_pkey",
        "ALTER TABLE {s}.budget_log ALTER COLUMN stamp DROP NOT NULL",
    ],
)
def test_the_budget_tables_heal_too(
    pg_url: str, schema: str, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    open_one(pg_url, schema)
    assert not [r for r in caplog.records if "Restored" in r.getMessage()]  # created, not healed
    declared = budget_schema(pg_url, schema)
    assert len(declared["tables"]) == 2 and len(declared["indexes"]) == 2
    run_sql(pg_url, damage.format(s=schema))
    assert budget_schema(pg_url, schema) != declared

    open_one(pg_url, schema)

    assert budget_schema(pg_url, schema) == declared
    (said,) = [r.getMessage() for r in caplog.records if "Restored" in r.getMessage()]
    assert said.startswith("Restored what the request budget's tables lacked: ")


def test_budget_rows_that_forbid_a_key_are_emptied(
    pg_url: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The budget's tables hold only request times and the server's last word."""
    open_one(pg_url, schema)
    declared = budget_schema(pg_url, schema)
    run_sql(
        pg_url,
        f"ALTER TABLE {schema}.budget_server DROP CONSTRAINT budget_server_pkey",
        f"INSERT INTO {schema}.budget_server VALUES ('a', 1, 0, 0), ('a', 2, 0, 0)",
    )

    open_one(pg_url, schema)

    assert budget_schema(pg_url, schema) == declared
    (said,) = [r.getMessage() for r in caplog.records if "Restored" in r.getMessage()]
    assert said == (
        f"Restored what the request budget's tables lacked: primary key {schema}.budget_server"
        f"(api) (emptied {schema}.budget_server first, its rows broke it)."
    )
