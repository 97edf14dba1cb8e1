"""The warehouse step's transaction, one load per schema at a time: the tables, the history
tables, their versions, and the `table_versions` record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from football_assets.resources.history_sql import MEMBERSHIP, TEAMS, load_history
from football_assets.resources.warehouse_schema import TABLE_VERSIONS, lock_schema
from football_assets.resources.warehouse_sql import LoadStats, Rows, replace_table, stats_of


def load_all(
    cursor: psycopg.Cursor[Any],
    metadata: sa.MetaData,
    loads: Sequence[tuple[str, Rows]],
    *,
    history_columns: list[str] | None,
    inputs_version: str | None,
    run_id: str,
) -> dict[str, LoadStats]:
    schema = str(metadata.schema)

    def table(name: str) -> sa.Table:
        return metadata.tables[f"{schema}.{name}"]

    # Two loads at once (two refreshes, a UI run) would both compare with the same committed
    # rows and insert the same keys: the second waits here, then compares with the first's.
    lock_schema(cursor, schema)
    stats: dict[str, LoadStats] = {}
    for name, rows in loads:
        stats[name] = replace_table(cursor, table(name), rows)
    if history_columns is not None:
        history = {name: table(name) for name in (TEAMS, MEMBERSHIP)}
        stats.update(load_history(cursor, history, history_columns, run_id=run_id))
    if any(s.changes.changed for s in stats.values()):
        # A table materialized with a changed sibling needs its version too.
        for name, loaded in stats.items():
            if loaded.version is None:
                stats[name] = stats_of(cursor, table(name), loaded.changes, with_version=True)
    if inputs_version is not None:
        record_build(cursor, schema, stats, inputs_version, run_id)
    return stats


def record_build(
    cursor: psycopg.Cursor[Any],
    schema: str,
    stats: dict[str, LoadStats],
    inputs_version: str,
    run_id: str,
) -> None:
    cursor.executemany(
        sql.SQL(
            "INSERT INTO {t} (table_name, inputs_version, data_version, row_count, "
            "checked_run_id, changed_run_id) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (table_name) DO UPDATE SET inputs_version = EXCLUDED.inputs_version, "
            "data_version = coalesce(EXCLUDED.data_version, {t}.data_version), "
            "row_count = EXCLUDED.row_count, checked_run_id = EXCLUDED.checked_run_id, "
            "checked_at = now(), "
            "changed_run_id = coalesce(EXCLUDED.changed_run_id, {t}.changed_run_id)"
        ).format(t=sql.Identifier(schema, TABLE_VERSIONS)),
        [
            (
                name,
                inputs_version,
                loaded.version,
                loaded.rows,
                run_id,
                run_id if loaded.changes.changed else None,
            )
            for name, loaded in stats.items()
        ],
    )
