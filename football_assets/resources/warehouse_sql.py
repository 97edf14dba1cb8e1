"""The set-based statements behind the warehouse resource: the latest raw answers, table loads.

A table load makes a table hold exactly a set of rows (the last duplicate wins) in one
statement: rows that went are deleted, rows that are new or changed are inserted or updated,
unchanged rows are not touched, not even locked, so loading what a table already holds writes
nothing. Rows come either from Python, sent with COPY to a staging table, or from a SELECT that
PostgreSQL runs over the stored JSONB answers, so those rows never leave the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from football_assets.resources.warehouse_schema import RAW_RESPONSES


@dataclass(frozen=True)
class RawPartitions:
    """The latest stored answer of each of these partitions of a raw asset, left in PostgreSQL.

    What the IO manager hands an input annotated with this type: naming the partitions costs
    nothing, and a table built from them reads them all in the one query that extracts its rows.
    """

    asset: str
    partition_keys: tuple[str, ...]

    def only(self, keys: Iterable[str]) -> RawPartitions:
        wanted = set(keys)
        return RawPartitions(self.asset, tuple(k for k in self.partition_keys if k in wanted))


@dataclass(frozen=True)
class RowsFromRaw:
    """A table's rows as a SELECT over `latest(partition_key text, payload jsonb)`, the latest
    payload of each partition of `source`. It returns the table's columns and `_ord`, the load
    order that breaks ties between duplicate keys (the last one wins)."""

    select_sql: str
    source: RawPartitions


Rows = Iterable[Mapping[str, Any]] | RowsFromRaw


@dataclass(frozen=True)
class LoadStats:
    rows: int  # rows the table holds after the load
    inserted: int
    updated: int
    deleted: int


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


def replace_table(cursor: psycopg.Cursor[Any], target: sa.Table, rows: Rows) -> LoadStats:
    """Make `target` hold exactly `rows` (last duplicate wins), inside the caller's transaction."""
    schema = str(target.schema)
    columns = [c.name for c in target.columns]
    keys = [c.name for c in target.primary_key.columns]
    others = [c for c in columns if c not in keys]
    table = sql.Identifier(schema, target.name)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    key_cols = sql.SQL(", ").join(map(sql.Identifier, keys))

    def qualified(alias: str, names: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(alias, c) for c in names)

    def match(left: str, right: str) -> sql.Composable:
        return sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(left, k), sql.Identifier(right, k))
            for k in keys
        )

    # A few hundred thousand rows sort in memory; and the planner's Memoize over
    # jsonb_array_elements would hash every whole payload for a cache that never hits.
    cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL enable_memoize = off")
    params: dict[str, Any] = {}
    if isinstance(rows, RowsFromRaw):
        source = sql.SQL("latest AS ({latest}), rows AS ({select}),").format(
            latest=latest_sql(schema, ["payload"]),
            select=sql.SQL(rows.select_sql),  # type: ignore[arg-type]
        )
        params = {"keys": list(rows.source.partition_keys), "asset": rows.source.asset}
    else:
        stage = sql.Identifier(f"stage_{target.name}")
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE {stage} (LIKE {table}) ON COMMIT DROP").format(
                stage=stage, table=table
            )
        )
        # The load order breaks ties among duplicates (the same team in two payloads).
        cursor.execute(
            sql.SQL(
                "ALTER TABLE {stage} ADD COLUMN _ord bigint GENERATED ALWAYS AS IDENTITY"
            ).format(stage=stage)
        )
        copy_sql = sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(stage=stage, cols=cols)
        with cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row([row.get(c) for c in columns])
        source = sql.SQL("rows AS (SELECT * FROM {stage}),").format(stage=stage)
    if others:
        # Last duplicate wins; ON CONFLICT DO UPDATE may not meet one key twice.
        src = sql.SQL(
            "SELECT DISTINCT ON ({keys}) {cols} FROM rows ORDER BY {keys}, _ord DESC"
        ).format(keys=key_cols, cols=cols)
        differs = sql.SQL("({}) IS DISTINCT FROM ({})")
        on_conflict = sql.SQL("ON CONFLICT ({keys}) DO UPDATE SET {sets} WHERE {differs}").format(
            keys=key_cols,
            sets=sql.SQL(", ").join(
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in others
            ),
            differs=differs.format(qualified("t", others), qualified("excluded", others)),
        )
        changed = sql.SQL("cur.{k} IS NULL OR {differs}").format(
            k=sql.Identifier(keys[0]),
            differs=differs.format(qualified("cur", others), qualified("src", others)),
        )
    else:
        # Keys only: a duplicate is the same row, and DO NOTHING skips it.
        src = sql.SQL("SELECT {cols} FROM rows").format(cols=cols)
        on_conflict = sql.SQL("ON CONFLICT ({keys}) DO NOTHING").format(keys=key_cols)
        changed = sql.SQL("cur.{k} IS NULL").format(k=sql.Identifier(keys[0]))
    # One statement, one snapshot: the DELETE and the INSERT touch disjoint keys. Only new and
    # changed rows reach the INSERT: ON CONFLICT ... WHERE would still lock (and so write)
    # every conflicting row it then leaves alone.
    cursor.execute(
        sql.SQL(
            "WITH {source} src AS ({src}), "
            "gone AS (DELETE FROM {table} AS t WHERE NOT EXISTS "
            "(SELECT 1 FROM src WHERE {src_t}) RETURNING 1), "
            "up AS (INSERT INTO {table} AS t ({cols}) SELECT {src_cols} FROM src "
            "LEFT JOIN {table} AS cur ON {cur_src} WHERE {changed} {on_conflict} "
            "RETURNING (xmax = 0) AS inserted) "
            "SELECT (SELECT count(*) FROM gone), count(*) FILTER (WHERE inserted), "
            "count(*) FILTER (WHERE NOT inserted) FROM up"
        ).format(
            source=source,
            src=src,
            table=table,
            src_t=match("src", "t"),
            cols=cols,
            src_cols=qualified("src", columns),
            cur_src=match("cur", "src"),
            changed=changed,
            on_conflict=on_conflict,
        ),
        params or None,
    )
    # Aggregates always return exactly one row.
    deleted, inserted, updated = cursor.fetchone()  # type: ignore[misc]
    cursor.execute(sql.SQL("SELECT count(*) FROM {table}").format(table=table))
    (total,) = cursor.fetchone()  # type: ignore[misc]
    return LoadStats(rows=total, inserted=inserted, updated=updated, deleted=deleted)
