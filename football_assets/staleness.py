"""Is the warehouse current with the raw answers? Dagster's data and code versions say.

Each table's data version is derived from its code version and the SHA-256 of every raw answer
it was built from (`assets/warehouse.py`), and the report records the versions of the tables it
read. So "rebuilding would change nothing" is a comparison of recorded versions with the ones a
build would record now, plus two facts Dagster cannot see: the tables still hold what was
loaded (nobody emptied them by hand) and the report file is still there, unchanged.

Dagster's own stale-status resolver answers the same question but skips partitioned parents
with 100 partitions or more, which is where this project's scale begins; hence this check.
"""

from __future__ import annotations

import hashlib

import dagster as dg
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    get_input_data_version_tag,
)

from football_assets.assets import reporting, warehouse
from football_assets.resources.output import OutputError, OutputLocation
from football_assets.resources.warehouse import Warehouse

TABLES = [spec.key for spec in warehouse.WAREHOUSE_SPECS]
REPORT = reporting.summary_csv.key
# What the warehouse run builds: the three tables (one step) and the report.
WAREHOUSE_RUN = [*TABLES, REPORT]


def stale_reasons(
    instance: dg.DagsterInstance, store: Warehouse, output: OutputLocation
) -> list[str]:
    """Why the tables or the report would change if rebuilt now; empty when they would not."""
    expected = warehouse.expected_versions(store)
    if expected is None:
        return ["the competition list was never fetched"]
    reasons: list[str] = []
    for key in TABLES:
        name = key.to_user_string()
        event = instance.get_latest_materialization_event(key)
        materialization = event.asset_materialization if event else None
        if materialization is None:
            reasons.append(f"{name} was never built")
            continue
        tags = materialization.tags or {}
        if tags.get(CODE_VERSION_TAG) != warehouse.CODE_VERSION:
            reasons.append(
                f"{name} was built by other code (code version {tags.get(CODE_VERSION_TAG)})"
            )
        elif tags.get(DATA_VERSION_TAG) != expected[name]:
            reasons.append(f"{name} was built from other raw answers")
        else:
            loaded = materialization.metadata.get("dagster/row_count")
            if loaded is None or loaded.value != store.count_rows(name):
                reasons.append(f"{name} no longer holds the rows its last build loaded")
    event = instance.get_latest_materialization_event(REPORT)
    report = event.asset_materialization if event else None
    if report is None:
        return [*reasons, "summary_csv was never written"]
    tags = report.tags or {}
    if tags.get(CODE_VERSION_TAG) != reporting.CODE_VERSION:
        reasons.append("summary_csv was written by other code")
    for key in (warehouse.DIM_COMPETITIONS.key, warehouse.FACT_COMPETITIONS.key):
        if tags.get(get_input_data_version_tag(key)) != expected[key.to_user_string()]:
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
