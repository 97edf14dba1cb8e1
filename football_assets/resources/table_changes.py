"""One table's load inside the caller's transaction: build (a temporary table), compare (counts,
first changes), apply (only what differs); and the SHA-256 of a table's rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

SAMPLE_ROWS = 20  # changed rows fetched for the change set; the Markdown shows that many lines


@dataclass(frozen=True)
class Change:
    key: str  # "id=57" or "competition_id=2021, team_id=57"
    column: str  # a column name, or "(row)" for a row inserted or deleted
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ChangeSet:
    inserted: int
    updated: int
    deleted: int
    sample: tuple[Change, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


def staged(target: sa.Table) -> sql.Identifier:
    return sql.Identifier(f"new_{target.name}")


def _keys(target: sa.Table) -> list[str]:
    return [c.name for c in target.primary_key.columns]


def _others(target: sa.Table) -> list[str]:
    keys = set(_keys(target))
    return [c.name for c in target.columns if c.name not in keys]


def _match(target: sa.Table, left: str, right: str) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left, k), sql.Identifier(right, k))
        for k in _keys(target)
    )


def _differs(target: sa.Table, left: str, right: str) -> sql.Composable:
    others = _others(target)
    if not others:
        return sql.SQL("false")
    return sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(
        sql.SQL(", ").join(sql.Identifier(left, c) for c in others),
        sql.SQL(", ").join(sql.Identifier(right, c) for c in others),
    )


def create_stage(cursor: psycopg.Cursor[Any], target: sa.Table) -> None:
    """The empty temporary table `new_<name>`, shaped like `target` (its NOT NULLs included)."""
    cursor.execute(
        sql.SQL("CREATE TEMP TABLE {stage} (LIKE {table}) ON COMMIT DROP").format(
            stage=staged(target), table=sql.Identifier(str(target.schema), target.name)
        )
    )


def fill_stage(
    cursor: psycopg.Cursor[Any],
    target: sa.Table,
    source: sql.Composable,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Stage the distinct keys of `rows(columns..., _ord)` defined by `source` (a WITH list
    ending in `rows AS (...)`): among duplicate keys, the highest `_ord` wins."""
    cols = sql.SQL(", ").join(sql.Identifier(c.name) for c in target.columns)
    keys = sql.SQL(", ").join(map(sql.Identifier, _keys(target)))
    if _others(target):
        pick = sql.SQL("SELECT DISTINCT ON ({keys}) {cols} FROM rows ORDER BY {keys}, _ord DESC")
    else:
        pick = sql.SQL("SELECT DISTINCT {cols} FROM rows")
    cursor.execute(
        sql.SQL("INSERT INTO {stage} ({cols}) WITH {source} {pick}").format(
            stage=staged(target), cols=cols, source=source, pick=pick.format(keys=keys, cols=cols)
        ),
        params,
    )


def stage_python_rows(
    cursor: psycopg.Cursor[Any], target: sa.Table, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Stage rows sent from Python with COPY; the order sent breaks ties (last one wins)."""
    columns = [c.name for c in target.columns]
    raw = sql.Identifier(f"copy_{target.name}")
    cursor.execute(
        sql.SQL(
            "CREATE TEMP TABLE {raw} (LIKE {table}) ON COMMIT DROP; "
            "ALTER TABLE {raw} ADD COLUMN _ord bigint GENERATED ALWAYS AS IDENTITY"
        ).format(raw=raw, table=sql.Identifier(str(target.schema), target.name))
    )
    copy_sql = sql.SQL("COPY {raw} ({cols}) FROM STDIN").format(
        raw=raw, cols=sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row([row.get(c) for c in columns])
    fill_stage(cursor, target, sql.SQL("rows AS (SELECT * FROM {raw})").format(raw=raw))


def compare(cursor: psycopg.Cursor[Any], target: sa.Table) -> ChangeSet:
    """What applying the staged rows would change in `target`: counts and the first changes."""
    table = sql.Identifier(str(target.schema), target.name)
    first = sql.Identifier(_keys(target)[0])
    joined = sql.SQL("FROM {stage} AS n FULL JOIN {table} AS c ON {match}").format(
        stage=staged(target), table=table, match=_match(target, "n", "c")
    )
    cursor.execute(
        sql.SQL(
            "SELECT count(*) FILTER (WHERE c.{k} IS NULL), "
            "count(*) FILTER (WHERE n.{k} IS NOT NULL AND c.{k} IS NOT NULL AND {differs}), "
            "count(*) FILTER (WHERE n.{k} IS NULL) {joined}"
        ).format(k=first, differs=_differs(target, "n", "c"), joined=joined)
    )
    inserted, updated, deleted = cursor.fetchone()  # type: ignore[misc]
    if not (inserted or updated or deleted):
        return ChangeSet(0, 0, 0)
    order = sql.SQL(", ").join(
        sql.SQL("coalesce(n.{k}, c.{k})").format(k=sql.Identifier(k)) for k in _keys(target)
    )
    cursor.execute(
        sql.SQL(
            "SELECT to_jsonb(n), to_jsonb(c) {joined} "
            "WHERE c.{k} IS NULL OR n.{k} IS NULL OR {differs} ORDER BY {order} LIMIT {limit}"
        ).format(
            joined=joined,
            k=first,
            differs=_differs(target, "n", "c"),
            order=order,
            limit=sql.Literal(SAMPLE_ROWS),
        )
    )
    sample = [
        change for new, old in cursor.fetchall() for change in _row_changes(_keys(target), old, new)
    ]
    return ChangeSet(inserted, updated, deleted, tuple(sample[:SAMPLE_ROWS]))


def _row_changes(
    keys: Sequence[str], old: dict[str, Any] | None, new: dict[str, Any] | None
) -> list[Change]:
    row = new if new is not None else old
    assert row is not None
    key = ", ".join(f"{k}={row[k]}" for k in keys)
    if old is None:
        return [Change(key, "(row)", None, "inserted")]
    if new is None:
        return [Change(key, "(row)", "deleted", None)]
    return [
        Change(key, c, _text(old[c]), _text(new[c]))
        for c in new
        if c not in keys and old.get(c) != new[c]
    ]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def apply(cursor: psycopg.Cursor[Any], target: sa.Table, changes: ChangeSet) -> None:
    """Make `target` hold the staged rows, touching only rows that differ."""
    table = sql.Identifier(str(target.schema), target.name)
    stage = staged(target)
    match = _match(target, "n", "t")
    if changes.deleted:
        cursor.execute(
            sql.SQL(
                "DELETE FROM {table} AS t WHERE NOT EXISTS (SELECT 1 FROM {stage} AS n WHERE {m})"
            ).format(table=table, stage=stage, m=match)
        )
    if changes.updated:
        cursor.execute(
            sql.SQL("UPDATE {table} AS t SET {sets} FROM {stage} AS n WHERE {m} AND {d}").format(
                table=table,
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = n.{c}").format(c=sql.Identifier(c)) for c in _others(target)
                ),
                stage=stage,
                m=match,
                d=_differs(target, "n", "t"),
            )
        )
    if changes.inserted:
        cols = sql.SQL(", ").join(sql.Identifier(c.name) for c in target.columns)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} ({cols}) SELECT {ncols} FROM {stage} AS n "
                "WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {m})"
            ).format(
                table=table,
                cols=cols,
                ncols=sql.SQL(", ").join(sql.Identifier("n", c.name) for c in target.columns),
                stage=stage,
                m=match,
            )
        )


def rows_version(cursor: psycopg.Cursor[Any], target: sa.Table) -> tuple[str, int]:
    """The table's data version (SHA-256 of its rows as text, in key order) and its row count.

    Set-based, in PostgreSQL; the caller sets TimeZone to UTC so the text does not depend on
    the session's settings.
    """
    keys = sql.SQL(", ").join(sql.Identifier("t", k) for k in _keys(target))
    cursor.execute(
        sql.SQL(
            "SELECT encode(sha256(convert_to(coalesce(string_agg(t::text, E'\\n' ORDER BY {keys}),"
            " ''), 'UTF8')), 'hex'), count(*) FROM {table} AS t"
        ).format(keys=keys, table=sql.Identifier(str(target.schema), target.name))
    )
    version, count = cursor.fetchone()  # type: ignore[misc]
    return str(version), int(count)
