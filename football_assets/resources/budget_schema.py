"""The request budget's tables, declared once for both backends (SQLite's DDL is compiled from
them), healed in PostgreSQL like the warehouse's; and the transaction the budget runs in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import dagster as dg
import psycopg
import sqlalchemy as sa
from psycopg import errors

from football_assets.resources.schema_healing import SchemaRefused, heal_schema


@dataclass
class Tx:
    """A transaction excluding every other one of the same budget: `run(query, params)` with
    `?` placeholders, and the budget's clock (epoch seconds) read once it holds the budget."""

    run: Callable[[str, tuple[Any, ...]], Any]
    now: float

    def row(self, query: str, *params: Any) -> Any:
        return self.run(query, params).fetchone()


@cache
def budget_tables(schema: str | None) -> sa.MetaData:
    metadata = sa.MetaData(schema=schema)
    sa.Table(
        "budget_log",
        metadata,
        sa.Column("budget", sa.Text, nullable=False),
        sa.Column("stamp", sa.Double, nullable=False),
        sa.Index("budget_log_stamp", "budget", "stamp"),
    )
    sa.Table(
        "budget_server",
        metadata,
        sa.Column("api", sa.Text, primary_key=True),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("reset_at", sa.Double, nullable=False),
        sa.Column("sent_at", sa.Double, nullable=False),
    )
    return metadata


@cache
def sqlite_ddl() -> tuple[str, ...]:
    """The same tables for a SQLite file, created when missing."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite.dialect()
    statements: list[str] = []
    for table in budget_tables(None).sorted_tables:
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        statements += [
            str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
            for index in sorted(table.indexes, key=lambda index: str(index.name))
        ]
    return tuple(statements)


def _hint(table: str) -> str:
    return f"empty {table}, then re-run"


class BudgetSchemaRefused(RuntimeError):
    """The budget's tables lack something the rows in place forbid restoring; one line."""


def heal_budget_schema(conn: psycopg.Connection[Any], schema: str, lock_key: int) -> list[str]:
    """Restore the budget's tables in `schema` on `conn` (autocommit): one transaction under
    the budget's DDL lock; reads the catalog only, unless something is missing (DDL needs
    CREATE rights even where it would do nothing)."""

    def lock() -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))

    for attempt in range(2):
        # Our creators queue on the lock; anyone else's DDL (the warehouse's, in the same
        # schema) may still win a race on the catalog, hence one retry.
        try:
            with conn.transaction():
                metadata = budget_tables(schema)
                # Both tables may be emptied to restore a key: they hold only request times
                # and the server's last word, which its next answer gives again.
                restored = heal_schema(
                    conn,
                    metadata,
                    _hint,
                    rebuilt=[t.name for t in metadata.sorted_tables],
                    lock=lock,
                ).restored
            break
        except (errors.UniqueViolation, errors.DuplicateSchema, errors.DuplicateTable):
            if attempt:
                raise
        except SchemaRefused as exc:
            raise BudgetSchemaRefused(f"Request budget: {exc}") from None
    declared = {f"table {t.schema}.{t.name}" for t in budget_tables(schema).sorted_tables}
    if restored and not declared <= set(restored):  # not a first set-up
        dg.get_dagster_logger().warning(
            "Restored what the request budget's tables lacked: %s.", "; ".join(restored)
        )
    return restored
