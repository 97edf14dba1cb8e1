"""What PostgreSQL's catalog says a schema holds, read in four queries: tables and columns
(NOT NULL), constraints (keys, unique, checks, foreign keys with ON DELETE) and indexes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg

_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, a.attnotnull
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p')"""

# Key columns by name, in key order.
_CONSTRAINTS = """
SELECT n.nspname, c.relname, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.i),
       fn.nspname, fc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.i),
       con.confdeltype
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND con.contype IN ('p', 'u', 'f', 'c')"""

_INDEXES = """
SELECT n.nspname, t.relname, i.relname, ix.indisunique,
       ARRAY(SELECT a.attname FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.num
             ORDER BY k.i)
FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = ANY(%(schemas)s)"""


@dataclass
class Catalog:
    """What the database has, per (schema, table)."""

    schemas: set[str] = field(default_factory=set)
    columns: dict[tuple[str, str], dict[str, bool]] = field(default_factory=dict)
    primary: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    unique: dict[tuple[str, str], set[tuple[str, ...]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    checks: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    # (columns, target schema, target table, target columns) -> [(ON DELETE code, name)]
    foreign: dict[tuple[str, str], dict[tuple[Any, ...], list[tuple[str, str]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    indexes: dict[tuple[str, str], dict[str, tuple[str, ...]]] = field(
        default_factory=lambda: defaultdict(dict)
    )


def read_catalog(conn: psycopg.Connection[Any], schemas: list[str]) -> Catalog:
    found = Catalog()
    params = {"schemas": schemas}
    query = "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%(schemas)s)"
    found.schemas = {row[0] for row in conn.execute(query, params)}
    for schema, table, column, not_null in conn.execute(_COLUMNS, params):
        columns = found.columns.setdefault((schema, table), {})
        if column is not None:
            columns[column] = not_null
    for schema, table, name, kind, cols, ref_schema, ref_table, ref_cols, on_delete in conn.execute(
        _CONSTRAINTS, params
    ):
        key = (schema, table)
        if kind == "p":
            found.primary[key] = tuple(cols)
            found.unique[key].add(tuple(cols))
        elif kind == "u":
            found.unique[key].add(tuple(cols))
        elif kind == "c":
            found.checks[key].add(name)
        else:
            target = (tuple(cols), ref_schema, ref_table, tuple(ref_cols))
            found.foreign[key].setdefault(target, []).append((on_delete, name))
    for schema, table, name, is_unique, cols in conn.execute(_INDEXES, params):
        found.indexes[(schema, table)][name] = tuple(cols)
        if is_unique:
            found.unique[(schema, table)].add(tuple(cols))
    return found
