"""Heal a PostgreSQL schema: create what the catalog lacks of the declared tables (any
`sa.MetaData`) in the caller's transaction, or refuse in one line when the rows forbid it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import errors
from sqlalchemy.dialects import postgresql

from football_assets.resources.schema_catalog import Catalog, read_catalog

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_QUOTE = _DIALECT.identifier_preparer
# pg_constraint.confdeltype of each ON DELETE action.
_ON_DELETE = {
    "NO ACTION": "a",
    "RESTRICT": "r",
    "CASCADE": "c",
    "SET NULL": "n",
    "SET DEFAULT": "d",
}


class SchemaRefused(Exception):
    """Something declared is missing and the rows in place forbid restoring it; str() is the
    one line to show (what is missing, why it cannot come back, what to do)."""


def _ddl(element: Any) -> str:
    return str(element.compile(dialect=_DIALECT))


def _cols(columns: Any) -> str:
    return f"({', '.join(c.name for c in columns)})"


def _add(constraint: Any) -> str:
    return _ddl(sa.schema.AddConstraint(constraint))


def _create_table(table: sa.Table) -> list[str]:
    statements = [_ddl(sa.schema.CreateTable(table))]
    if table.comment:
        statements.append(_ddl(sa.schema.SetTableComment(table)))
    statements += [_ddl(sa.schema.SetColumnComment(c)) for c in table.columns if c.comment]
    return statements + [_ddl(sa.schema.CreateIndex(index)) for index in table.indexes]


@dataclass
class _Repair:
    what: str  # "foreign key football.fact_competitions(team_id) -> dim_teams(id)"
    table: str  # the table it belongs to, quoted as SQL writes it
    statements: list[str]
    bare: str = ""  # the table's name alone


def _column_repairs(table: sa.Table, name: str, have: dict[str, bool]) -> list[_Repair]:
    repairs = []
    for column in table.columns:
        quoted = _QUOTE.quote(column.name)
        if column.name not in have:
            statements = [f"ALTER TABLE {name} ADD {_ddl(sa.schema.CreateColumn(column))}"]
            if column.comment:
                statements.append(_ddl(sa.schema.SetColumnComment(column)))
            repairs.append(_Repair(f"column {name}.{column.name}", name, statements))
        elif not column.nullable and not have[column.name]:
            statement = f"ALTER TABLE {name} ALTER COLUMN {quoted} SET NOT NULL"
            repairs.append(_Repair(f"NOT NULL of {name}.{column.name}", name, [statement]))
    return repairs


def _constraint_repairs(table: sa.Table, name: str, found: Catalog) -> list[_Repair]:
    key = (table.schema or "public", table.name)
    repairs = []
    if table.primary_key.columns and key not in found.primary:
        what = f"primary key {name}{_cols(table.primary_key.columns)}"
        repairs.append(_Repair(what, name, [_add(table.primary_key)]))
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            if tuple(c.name for c in constraint.columns) not in found.unique[key]:
                what = f"unique constraint {name}{_cols(constraint.columns)}"
                repairs.append(_Repair(what, name, [_add(constraint)]))
        elif (
            isinstance(constraint, sa.CheckConstraint)
            and isinstance(constraint.name, str)  # unnamed ones cannot be told apart
            and constraint.name not in found.checks[key]
        ):
            what = f"check constraint {name}.{constraint.name}"
            repairs.append(_Repair(what, name, [_add(constraint)]))
    for index in table.indexes:
        have = found.indexes[key].get(str(index.name))
        if have != tuple(c.name for c in index.columns):
            statements = [_ddl(sa.schema.CreateIndex(index))]
            if have is not None:  # the name, on other columns: rebuilt as declared
                drop = f"DROP INDEX {_QUOTE.quote_schema(key[0])}.{_QUOTE.quote(str(index.name))}"
                statements.insert(0, drop)
            what = f"index {key[0]}.{index.name}{_cols(index.columns)}"
            repairs.append(_Repair(what, name, statements))
    return repairs


def _foreign_key_repairs(table: sa.Table, name: str, found: Catalog) -> list[_Repair]:
    key = (table.schema or "public", table.name)
    repairs = []
    for constraint in table.foreign_key_constraints:
        target = constraint.elements[0].column.table
        wanted = (
            tuple(c.name for c in constraint.columns),
            target.schema or "public",
            target.name,
            tuple(e.column.name for e in constraint.elements),
        )
        on_delete = _ON_DELETE[(constraint.ondelete or "NO ACTION").upper()]
        have = found.foreign[key].get(wanted, [])
        if on_delete in (code for code, _ in have):
            continue
        # The same key with another ON DELETE would change what deleting a row does (and
        # hold the declared key's name): replaced by the declared one.
        statements = [f"ALTER TABLE {name} DROP CONSTRAINT {_QUOTE.quote(n)}" for _, n in have]
        refers = f"{target.name}{_cols(e.column for e in constraint.elements)}"
        what = f"foreign key {name}{_cols(constraint.columns)} -> {refers}"
        repairs.append(_Repair(what, name, [*statements, _add(constraint)]))
    return repairs


def _repairs(metadata: sa.MetaData, found: Catalog) -> list[_Repair]:
    """What is missing and the statements that restore it; foreign keys last, as they need
    the tables and keys they point at."""
    repairs: list[_Repair] = []
    for schema in sorted({t.schema for t in metadata.tables.values() if t.schema}):
        if schema not in found.schemas:
            create = _ddl(sa.schema.CreateSchema(schema))
            repairs.append(_Repair(f"schema {schema}", schema, [create]))
    foreign: list[_Repair] = []
    for table in metadata.sorted_tables:
        key = (table.schema or "public", table.name)
        name = _QUOTE.format_table(table)
        if key not in found.columns:
            repairs.append(_Repair(f"table {key[0]}.{key[1]}", name, _create_table(table)))
            continue
        repairs += _column_repairs(table, name, found.columns[key])
        repairs += _constraint_repairs(table, name, found)
        foreign += _foreign_key_repairs(table, name, found)
        for repair in repairs + foreign:
            repair.bare = repair.bare or (table.name if repair.table == name else "")
    return repairs + foreign


def _apply(conn: psycopg.Connection[Any], statements: list[str]) -> None:
    conn.execute(b"SAVEPOINT heal_schema")
    try:
        for statement in statements:
            conn.execute(statement.encode())
    except BaseException:
        conn.execute(b"ROLLBACK TO SAVEPOINT heal_schema")
        raise
    conn.execute(b"RELEASE SAVEPOINT heal_schema")


@dataclass
class Healing:
    restored: list[str] = field(default_factory=list)  # what came back
    left: list[str] = field(default_factory=list)  # one line each: what the rows forbid, why


def heal_schema(
    conn: psycopg.Connection[Any],
    metadata: sa.MetaData,
    what_to_do: Callable[[str], str],
    *,
    rebuilt: Collection[str] = (),
    strict: bool = True,
    lock: Callable[[], None] | None = None,
) -> Healing:
    """Create what `metadata` declares and the database lacks, on `conn`, in its transaction.
    Reads the catalog only, unless something is missing: then `lock()` (serializing healers)
    and the catalog is read again, as another healer may have restored it meanwhile.

    When the rows in place forbid restoring something (duplicates for a key, orphans for a
    foreign key, NULLs): a table named in `rebuilt` (rows derived from elsewhere, which the
    caller reloads in this transaction) is emptied and the repair retried. Otherwise its line
    names what is missing and ends with `what_to_do(table)`: raised as SchemaRefused when
    `strict` (nothing restored), else kept in `left` while the rest is restored. Only what is
    declared is compared: anything extra is left alone.
    """
    schemas = sorted({t.schema or "public" for t in metadata.tables.values()})
    healing = Healing()
    repairs = _repairs(metadata, read_catalog(conn, schemas))
    if repairs and lock is not None:
        lock()
        repairs = _repairs(metadata, read_catalog(conn, schemas))
    for repair in repairs:
        try:
            try:
                _apply(conn, repair.statements)
            except errors.IntegrityError as exc:
                if exc.diag.schema_name == "pg_catalog" or repair.bare not in rebuilt:
                    raise
                # DELETE, not TRUNCATE: ON DELETE CASCADE empties what hangs on these rows.
                # The name is the declared table's, quoted by SQLAlchemy.
                _apply(conn, [f"DELETE FROM {repair.table}", *repair.statements])  # noqa: S608
                repair.what += f" (emptied {repair.table} first, its rows broke it)"
        # InvalidForeignKey: the key it points at is itself left out (the rows forbid it).
        except (errors.IntegrityError, errors.InvalidForeignKey) as exc:
            if exc.diag.schema_name == "pg_catalog":
                raise  # a concurrent creator won a race on the catalog: for the caller to retry
            said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            detail = exc.diag.message_detail
            line = (
                f"The {repair.what} is missing and cannot be restored: {said}"
                f"{f' ({detail})' if detail else ''}; {what_to_do(repair.table)}"
            )
            if strict:
                raise SchemaRefused(line) from None
            healing.left.append(line)
            continue
        healing.restored.append(repair.what)
    return healing
