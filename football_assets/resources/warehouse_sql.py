"""The set-based statements behind the warehouse: the latest answer per partition, and a table's
rows from Python (COPY) or as a SELECT over the stored JSONB, through `table_changes`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from football_assets.resources import table_changes
from football_assets.resources.table_changes import ChangeSet
from football_assets.resources.warehouse_schema import RAW_RESPONSES


@dataclass(frozen=True)
class RawPartitions:
    """The latest stored answer of each of these partitions of a raw asset, left in PostgreSQL.

    What the IO manager hands an input annotated with this type: naming the partitions costs
    nothing, and a table built from them reads them all in the one query that extracts its rows.
    """

    asset: str
    partition_keys: tuple[str, ...]
    # Parallel to partition_keys when read per competition (see `competitions`); else empty.
    competition_ids: tuple[int, ...] = ()

    def only(self, keys: Iterable[str]) -> RawPartitions:
        wanted = set(keys)
        return RawPartitions(self.asset, tuple(k for k in self.partition_keys if k in wanted))

    def competitions(self, keys: Mapping[str, int]) -> RawPartitions:
        """The latest answer of each competition in `keys` ({partition key: id}), whichever
        key it was stored under: these keys, or the ids an instance was keyed by before. All
        of them, not only the partitions registered: an instance not yet migrated holds ids."""
        return RawPartitions(self.asset, tuple(keys), tuple(keys.values()))

    @property
    def keys(self) -> Keys:
        if self.competition_ids:
            return dict(zip(self.partition_keys, self.competition_ids, strict=True))
        return self.partition_keys


@dataclass(frozen=True)
class RowsFromRaw:
    """A table's rows as a SELECT over `latest(partition_key text, payload jsonb)`, the latest
    payload of each partition of `source`. It returns the table's columns and `_ord`, the load
    order that breaks ties between duplicate keys (the last one wins)."""

    select_sql: str
    source: RawPartitions


Rows = Iterable[Mapping[str, Any]] | RowsFromRaw
# Which answers to read: partition keys, or {partition key: competition id} (per competition).
Keys = Sequence[str] | Mapping[str, int]


@dataclass(frozen=True)
class LoadStats:
    rows: int  # rows the table holds after the load
    inserted: int
    updated: int
    deleted: int
    changes: ChangeSet = ChangeSet(0, 0, 0)
    version: str | None = None  # the rows' SHA-256 when they changed; None when unchanged


def latest_sql(schema: str, columns: Sequence[str]) -> sql.Composed:
    """`(partition_key, *columns)` of the latest answer per key in `%(keys)s` of `%(asset)s`.

    One index probe per partition (raw_responses_latest, backwards, LIMIT 1): the cost follows
    the partitions asked for, not the length of the history kept.
    """
    picked = sql.SQL(", ").join(map(sql.Identifier, columns))
    return sql.SQL(
        "SELECT k.partition_key, {outer} FROM unnest(%(keys)s::text[]) AS k(partition_key) "
        "CROSS JOIN LATERAL (SELECT {picked} FROM {raw} AS raw WHERE raw.asset = %(asset)s "
        "AND raw.partition_key = k.partition_key ORDER BY raw.id DESC LIMIT 1) AS r"
    ).format(
        outer=sql.SQL(", ").join(sql.Identifier("r", c) for c in columns),
        picked=picked,
        raw=sql.Identifier(schema, RAW_RESPONSES),
    )


def latest_by_competition_sql(schema: str, columns: Sequence[str]) -> sql.Composed:
    """`(partition_key, *columns, competition_id)`: the latest answer of each competition in
    `%(ids)s` of `%(asset)s`, keyed by its key in `%(keys)s` (parallel arrays), wherever it
    was stored (under that key, or under the id: the old keys) and about that competition by
    `raw_responses.competition_id` (a code may have named another competition before).

    One index probe per (competition, key it may be under), as `latest_sql`.
    """
    picked = sql.SQL(", ").join(map(sql.Identifier, columns))
    return sql.SQL(
        "SELECT DISTINCT ON (k.competition_id) k.partition_key, {outer}, k.competition_id "
        "FROM unnest(%(keys)s::text[], %(ids)s::integer[], %(probes)s::text[]) "
        "AS k(partition_key, competition_id, probe) "
        "CROSS JOIN LATERAL (SELECT {picked}, raw.id AS answer_id FROM {raw} AS raw "
        "WHERE raw.asset = %(asset)s AND raw.partition_key = k.probe "
        "AND raw.competition_id = k.competition_id "
        "ORDER BY raw.id DESC LIMIT 1) AS r "
        "ORDER BY k.competition_id, r.answer_id DESC"
    ).format(
        outer=sql.SQL(", ").join(sql.Identifier("r", c) for c in columns),
        picked=picked,
        raw=sql.Identifier(schema, RAW_RESPONSES),
    )


def latest_statement(
    schema: str, columns: Sequence[str], asset: str, keys: Keys
) -> tuple[sql.Composed, dict[str, Any]]:
    """The latest answers' SELECT and its parameters: per key, or per competition when `keys`
    maps keys to competition ids (then a last column, `competition_id`, follows `columns`)."""
    if not isinstance(keys, Mapping):
        return latest_sql(schema, columns), {"keys": list(dict.fromkeys(keys)), "asset": asset}
    probes = [(key, cid, key) for key, cid in keys.items()]
    probes += [(key, cid, str(cid)) for key, cid in keys.items() if key != str(cid)]
    params = {
        "keys": [p[0] for p in probes],
        "ids": [p[1] for p in probes],
        "probes": [p[2] for p in probes],
        "asset": asset,
    }
    return latest_by_competition_sql(schema, columns), params


def session_settings(cursor: psycopg.Cursor[Any]) -> None:
    """Settings for a load transaction: rows print the same text whatever the session (data
    versions hash that text); a few hundred thousand rows sort in memory; and the planner's
    Memoize over jsonb_array_elements would hash every whole payload for a cache that never
    hits."""
    cursor.execute(
        "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
        "SET LOCAL work_mem = '64MB'; SET LOCAL enable_memoize = off"
    )


def build(cursor: psycopg.Cursor[Any], target: sa.Table, rows: Rows) -> None:
    """Stage the new rows of `target` in `new_<name>` (distinct keys, last duplicate wins)."""
    table_changes.create_stage(cursor, target)
    if isinstance(rows, RowsFromRaw):
        latest, params = latest_statement(
            str(target.schema), ["payload", "fetched_at", "id"], rows.source.asset, rows.source.keys
        )
        source = sql.SQL("latest AS ({latest}), rows AS ({select})").format(
            latest=latest,
            select=sql.SQL(rows.select_sql),  # type: ignore[arg-type]
        )
        table_changes.fill_stage(cursor, target, source, params)
    else:
        table_changes.stage_python_rows(cursor, target, rows)


def replace_table(cursor: psycopg.Cursor[Any], target: sa.Table, rows: Rows) -> LoadStats:
    """Make `target` hold exactly `rows` (last duplicate wins), inside the caller's transaction:
    build, compare, and apply only when something differs."""
    session_settings(cursor)
    build(cursor, target, rows)
    changes = table_changes.compare(cursor, target)
    if changes.changed:
        table_changes.apply(cursor, target, changes)
    drop_stage(cursor, target)
    return stats_of(cursor, target, changes, with_version=changes.changed)


def stats_of(
    cursor: psycopg.Cursor[Any], target: sa.Table, changes: ChangeSet, *, with_version: bool
) -> LoadStats:
    """What the table holds now; its rows' version only when asked (it reads every row)."""
    version: str | None = None
    if with_version:
        version, total = table_changes.rows_version(cursor, target)
    else:
        table = sql.Identifier(str(target.schema), target.name)
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
        (total,) = cursor.fetchone()  # type: ignore[misc]
    return LoadStats(
        rows=total,
        inserted=changes.inserted,
        updated=changes.updated,
        deleted=changes.deleted,
        changes=changes,
        version=version,
    )


def drop_stage(cursor: psycopg.Cursor[Any], target: sa.Table) -> None:
    """Drop the staged rows now (a second load of the same table in one transaction reuses the
    name); ON COMMIT DROP covers every other path."""
    cursor.execute(
        sql.SQL("DROP TABLE IF EXISTS {}, {}").format(
            table_changes.staged(target), sql.Identifier(f"copy_{target.name}")
        )
    )
