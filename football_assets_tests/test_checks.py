"""Each integrity check fails on the data it exists to catch, not only passes on good data.

The schema's keys make such data impossible through the pipeline, so each test breaks the
warehouse behind the pipeline's back, as a person with psql could (drop a constraint, insert a
duplicate or an orphan, edit summary.csv), then runs the check alone, through Dagster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from football_assets.refresh import failure_line, refresh
from football_assets.resources.warehouse import Warehouse


def run_check(
    defs: dg.Definitions, instance: dg.DagsterInstance, asset: str, name: str
) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.get_subset(asset_selection=set(), asset_check_selection={key}).execute_in_process(
        instance=instance, raise_on_error=False
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == name
    return evaluation


def values(evaluation: dg.AssetCheckEvaluation) -> dict[str, Any]:
    return {key: entry.value for key, entry in evaluation.metadata.items()}


def behind_the_pipelines_back(warehouse: Warehouse, *statements: str) -> None:
    with warehouse.get_engine().begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement.replace("{schema}", f'"{warehouse.schema}"')))


def drop_constraints(warehouse: Warehouse, table: str, kind: str) -> str:
    """Statements dropping every constraint of `kind` ('p' key, 'f' foreign key) of `table`."""
    rows = warehouse.query(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype = :k",
        t=f'"{warehouse.schema}"."{table}"',
        k=kind,
    )
    assert rows, (table, kind)
    return "; ".join(
        f'ALTER TABLE {{schema}}.{table} DROP CONSTRAINT "{r["conname"]}" CASCADE' for r in rows
    )


@pytest.fixture
def built(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> dg.Definitions:
    refresh(snapshot_defs, instance)
    return snapshot_defs


DUPLICATES = {
    "dim_competitions": "INSERT INTO {schema}.dim_competitions "
    "SELECT * FROM {schema}.dim_competitions WHERE id = 2021",
    "dim_teams": "INSERT INTO {schema}.dim_teams SELECT * FROM {schema}.dim_teams WHERE id = 57",
    "fact_competitions": "INSERT INTO {schema}.fact_competitions VALUES (2021, 57)",
}


@pytest.mark.parametrize("table", list(DUPLICATES))
def test_key_unique_fails_on_a_duplicate_key(
    table: str,
    built: dg.Definitions,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
) -> None:
    assert run_check(built, instance, table, f"{table}_key_unique").passed
    rows = warehouse.count_rows(table)

    behind_the_pipelines_back(warehouse, drop_constraints(warehouse, table, "p"), DUPLICATES[table])

    evaluation = run_check(built, instance, table, f"{table}_key_unique")
    assert evaluation.passed is False
    assert evaluation.blocking is True  # it keeps the report from being written from it
    assert values(evaluation) == {"rows": rows + 1, "duplicate_keys": 1}


def test_references_resolve_fails_on_orphans(
    built: dg.Definitions, instance: dg.DagsterInstance, warehouse: Warehouse
) -> None:
    name = "fact_competitions_references_resolve"
    assert run_check(built, instance, "fact_competitions", name).passed

    behind_the_pipelines_back(
        warehouse,
        drop_constraints(warehouse, "fact_competitions", "f"),
        "INSERT INTO {schema}.fact_competitions VALUES (2021, 999999), (999998, 57), "
        "(999998, 999999)",
    )

    evaluation = run_check(built, instance, "fact_competitions", name)
    assert evaluation.passed is False and evaluation.blocking is True
    assert values(evaluation) == {"orphan_competitions": 2, "orphan_teams": 2}


def edit_summary(output_dir: Path, edit: str) -> None:
    path = output_dir / "summary.csv"
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    header, rows = lines[0], [line for line in lines[1:] if line]
    if edit == "missing":
        rows = rows[1:]
    elif edit == "repeated":
        rows = [*rows, rows[0]]
    else:  # unexpected
        rows = [*rows, "999999,XX,Nowhere League,0"]
    path.write_bytes("\r\n".join([header, *rows, ""]).encode("utf-8"))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("missing", {"csv_rows": 12, "missing": "2001", "unexpected": "none", "repeated_rows": 0}),
        ("repeated", {"csv_rows": 14, "missing": "none", "unexpected": "none", "repeated_rows": 1}),
        (
            "unexpected",
            {"csv_rows": 14, "missing": "none", "unexpected": "999999", "repeated_rows": 0},
        ),
    ],
)
def test_summary_has_every_competition_fails_on_an_edited_csv(
    edit: str,
    expected: dict[str, Any],
    built: dg.Definitions,
    instance: dg.DagsterInstance,
    output_dir: Path,
) -> None:
    name = "summary_has_every_competition"
    assert run_check(built, instance, "summary_csv", name).passed

    edit_summary(output_dir, edit)

    evaluation = run_check(built, instance, "summary_csv", name)
    assert evaluation.passed is False
    assert values(evaluation) == {**expected, "competitions": 13}


@pytest.mark.parametrize("table", ["dim_competitions", "dim_teams", "fact_competitions"])
def test_column_schema_change_warns_naming_the_changed_columns(
    table: str, built: dg.Definitions, instance: dg.DagsterInstance, warehouse: Warehouse
) -> None:
    assert run_check(built, instance, table, "column_schema_change").passed
    event = instance.get_latest_materialization_event(dg.AssetKey(table))
    schema = event.asset_materialization.metadata["dagster/column_schema"].value  # type: ignore[union-attr]
    first, *rest = schema.columns
    # What a build by code that adds a column and drops another would record.
    changed = dg.TableSchema(columns=[*rest, dg.TableColumn("coach_name", "text")])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(table, metadata={"dagster/column_schema": changed})
    )

    evaluation = run_check(built, instance, table, "column_schema_change")

    assert evaluation.passed is False
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "Added columns: coach_name" in (evaluation.description or "")
    assert f"Removed columns: {first.name}" in (evaluation.description or "")


def blocking_table_checks(defs: dg.Definitions) -> set[dg.AssetCheckKey]:
    graph = defs.resolve_asset_graph()
    tables = defs.resolve_assets_def("dim_teams").keys
    return {
        key
        for key in graph.asset_check_keys
        if key.asset_key in tables and graph.get_check_spec(key).blocking
    }


def test_each_blocking_table_check_executed_alone_evaluates_only_itself(
    built: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    # As the UI's "Execute" on one check: several checks share a step, the others stay unrun.
    keys = blocking_table_checks(built)
    assert len(keys) == 6
    job = built.resolve_implicit_global_asset_job_def()
    for key in keys:
        result = job.get_subset(asset_selection=set(), asset_check_selection={key})
        evaluations = result.execute_in_process(instance=instance).get_asset_check_evaluations()
        assert [(e.asset_key, e.check_name) for e in evaluations] == [(key.asset_key, key.name)]


@pytest.mark.parametrize(
    ("table", "holds_the_report"),
    [("dim_competitions", True), ("fact_competitions", True), ("dim_teams", False)],
)
def test_a_failing_key_check_holds_the_report_back_only_when_the_report_reads_the_table(
    table: str,
    holds_the_report: bool,
    built: dg.Definitions,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
) -> None:
    # summary.csv is written from dim_competitions and fact_competitions: a failing blocking
    # check of one of them keeps it from being written, one of dim_teams does not; every other
    # blocking check still gives its verdict.
    behind_the_pipelines_back(warehouse, drop_constraints(warehouse, table, "p"), DUPLICATES[table])
    keys = blocking_table_checks(built)
    job = built.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("summary_csv")}, asset_check_selection=keys
    )

    result = job.execute_in_process(instance=instance, raise_on_error=False)

    verdicts = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert verdicts == {
        (key.asset_key.to_user_string(), key.name): key.name != f"{table}_key_unique"
        for key in keys
    }
    written = [e.asset_key for e in result.get_asset_materialization_events()]
    assert written == ([] if holds_the_report else [dg.AssetKey("summary_csv")])
    assert result.success is False
    # The one line a refresh would print names the failed check, not only its step.
    assert failure_line(result).endswith(f"{table}: {table}_key_unique")
