"""Is the warehouse current? `table_versions` (what the last build read, its row counts) against
what a build would read now; and was the report written from the tables' latest versions?"""

from __future__ import annotations

import hashlib
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    get_input_data_version_tag,
)

from football_assets.assets import history, reporting, warehouse
from football_assets.resources.output import OutputError, OutputLocation
from football_assets.resources.table_changes import rows_version as _rows_version
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_errors import driver
from football_assets.resources.warehouse_sql import session_settings

TABLES = [spec.key for spec in warehouse.WAREHOUSE_SPECS]
REPORT = reporting.summary_csv.key
HISTORY = {spec.key.to_user_string() for spec in history.HISTORY_SPECS}
# What the warehouse run builds: the three tables (one step) and the report.
WAREHOUSE_RUN = [*TABLES, REPORT]


def table_versions(store: Warehouse) -> dict[str, dict[str, Any]]:
    """What each table's last build recorded (`table_versions`), by table name."""
    rows = store.query("SELECT * FROM {schema}.table_versions")
    return {row["table_name"]: row for row in rows}


def rows_version(store: Warehouse, name: str) -> str:
    """The table's data version as a build computes it (SHA-256 of its rows)."""
    with store.get_engine().connect() as conn:
        cursor = driver(conn).cursor()
        session_settings(cursor)
        return _rows_version(cursor, store.table(name))[0]


def table_reasons(store: Warehouse) -> list[str]:
    """Why building the tables now could change them; empty when it could not."""
    expected = warehouse.inputs_version(store)
    if expected is None:
        return ["the competition list was never fetched"]
    recorded = table_versions(store)
    reasons: list[str] = []
    for key in TABLES:
        name = key.to_user_string()
        built = recorded.get(name)
        if built is None:
            reasons.append(f"{name} was never built (by this version of the project)")
        elif built["inputs_version"] != expected:
            reasons.append(f"{name} was built from other raw answers or by other code")
        elif built["row_count"] != store.count_rows(name):
            reasons.append(f"{name} no longer holds the rows its last build left")
        elif (
            name in HISTORY
            and built["data_version"] is not None
            and built["data_version"] != rows_version(store, name)
        ):
            # A history edited in place keeps its row count; its rows' hash tells.
            reasons.append(f"{name} differs from what its last build wrote (edited by hand?)")
    return reasons


def last_build_run(store: Warehouse) -> str | None:
    """The run of the last build of the tables (whether or not it changed a row)."""
    recorded = table_versions(store).get(TABLES[0].to_user_string())
    return str(recorded["checked_run_id"]) if recorded else None


def report_reasons(instance: dg.DagsterInstance, output: OutputLocation) -> list[str]:
    """Why the report would change if written now from the tables; empty when it would not."""
    event = instance.get_latest_materialization_event(REPORT)
    report = event.asset_materialization if event else None
    if report is None:
        return ["summary_csv was never written"]
    reasons: list[str] = []
    tags = report.tags or {}
    if tags.get(CODE_VERSION_TAG) != reporting.CODE_VERSION:
        reasons.append("summary_csv was written by other code")
    for key in (warehouse.DIM_COMPETITIONS.key, warehouse.FACT_COMPETITIONS.key):
        table_event = instance.get_latest_materialization_event(key)
        table = table_event.asset_materialization if table_event else None
        current = (table.tags or {}).get(DATA_VERSION_TAG) if table else None
        if tags.get(get_input_data_version_tag(key)) != current:
            reasons.append(f"summary_csv was written from another {key.to_user_string()}")
            break
    try:
        data = output.read_bytes(reporting.SUMMARY_FILE)
    except (OutputError, OSError):
        reasons.append(f"{output.uri(reporting.SUMMARY_FILE)} is missing")
    else:
        if hashlib.sha256(data).hexdigest() != tags.get(DATA_VERSION_TAG):
            reasons.append(f"{output.uri(reporting.SUMMARY_FILE)} is not the file last written")
    return reasons


def stale_reasons(
    instance: dg.DagsterInstance, store: Warehouse, output: OutputLocation
) -> list[str]:
    """Why the tables or the report would change if rebuilt now; empty when they would not."""
    return [*table_reasons(store), *report_reasons(instance, output)]
