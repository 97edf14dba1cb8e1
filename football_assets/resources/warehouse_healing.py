"""The warehouse's declared tables restored in place: `schema_healing` applied to its schema."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import sqlalchemy as sa

from football_assets.resources.schema_healing import Healing, SchemaRefused, heal_schema
from football_assets.resources.warehouse_errors import LoadRefused, driver
from football_assets.resources.warehouse_schema import lock_schema, tables

# Tables whose rows are derived from the raw answers: when their rows forbid restoring a key
# (a dimension dropped by hand leaves orphan pairs), a load empties them in the transaction that
# reloads them (the history tables are rebuilt from raw_responses by every load).
REBUILT_TABLES = (
    "dim_competitions",
    "dim_teams",
    "fact_competitions",
    "dim_teams_history",
    "competition_membership_history",
)


# (run id, database, schema) whose schema a Warehouse of that run verified in this process: the
# run's own resource and the IO manager's copy then verify it once between them, as one resource
# does for all the run's steps. Never across runs: the schema may be changed by hand in between.
_VERIFIED_IN_RUN: set[tuple[str, str, str]] = set()


def verify_once_per_run(key: tuple[str, str, str] | None, verify: Callable[[], None]) -> None:
    """`verify()`, unless a Warehouse of the same run (`key`; None: no run) did already."""
    if key is None or key not in _VERIFIED_IN_RUN:
        verify()
        if key is not None:
            _VERIFIED_IN_RUN.add(key)


def forget_run(key: tuple[str, str, str] | None) -> None:
    if key is not None:
        _VERIFIED_IN_RUN.discard(key)


def _refused_hint(table: str) -> str:
    return f"delete or fix the rows of {table} that break it, then re-run"


def heal_warehouse(conn: sa.Connection, schema: str, where: str, *, strict: bool) -> Healing:
    """Restore what `schema` lacks of the declared tables; strict (in a load's transaction),
    derived tables whose rows block a key are emptied, other blocking rows refuse the load."""
    pg = driver(conn)
    declared = tables(schema)
    rebuilt = REBUILT_TABLES if strict else ()
    try:
        healing = heal_schema(
            pg,
            declared,
            _refused_hint,
            rebuilt=rebuilt,
            strict=strict,
            lock=lambda: lock_schema(pg.cursor(), schema),  # two healers would race on the catalog
        )
    except SchemaRefused as exc:
        raise LoadRefused(f"{exc}; every table keeps its previous contents") from None
    created = {f"table {t.schema}.{t.name}" for t in declared.sorted_tables}
    if healing.restored and not created <= set(healing.restored):  # not a first set-up
        dg.get_dagster_logger().warning(
            "Restored in %s what the warehouse declares and it lacked: %s.",
            where,
            "; ".join(healing.restored),
        )
    return healing
