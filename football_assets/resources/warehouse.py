"""The PostgreSQL warehouse as a Dagster resource and its Transaction: where it is (DATABASE_URL
or the embedded server), connect and heal, store raw answers, load the tables in one transaction,
read (read-only for `status`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
import psycopg
import sqlalchemy as sa
from psycopg import sql
from pydantic import Field, PrivateAttr
from sqlalchemy.engine import Engine

from football_assets.redaction import DatabaseUrlError, parse_database_url, redact_database_url
from football_assets.resources.defaults import DEFAULT_EMBEDDED_PGDATA, DEFAULT_SCHEMA
from football_assets.resources.postgres_server import (
    EmbeddedPostgresError,
    EmbeddedStatus,
    embedded_status,
    start_embedded_postgres,
)
from football_assets.resources.raw_records import RawRecord, copy_records
from football_assets.resources.schema_healing import Healing
from football_assets.resources.warehouse_errors import (
    REFUSED,
    WarehouseError,
    commit_unknown,
    connection_failed,
    database_unavailable,
    driver,
    load_interrupted,
    load_refused,
)
from football_assets.resources.warehouse_healing import (
    forget_run,
    heal_warehouse,
    verify_once_per_run,
)
from football_assets.resources.warehouse_load import load_all
from football_assets.resources.warehouse_schema import table, tables, validate_schema_name
from football_assets.resources.warehouse_sql import Keys, LoadStats, Rows, latest_statement

if TYPE_CHECKING:
    import pandas as pd

READ_ONLY_CONNECT_TIMEOUT_SECONDS = 3


class EmbeddedStopped(WarehouseError):
    """A read-only warehouse found the embedded server stopped (it never starts one)."""


class Transaction:
    """`with Transaction(engine_fn, where) as conn:` one transaction, its failures as one line;
    `engine_fn` gives the engine (connecting lazily), `where` names the server for messages."""

    def __init__(self, engine_fn: Callable[[], sa.Engine], where: Callable[[], str]) -> None:
        self._engine_fn = engine_fn
        self._where = where
        self._context: Any = None

    def __enter__(self) -> sa.Connection:
        try:
            self._context = self._engine_fn().begin()
            return self._context.__enter__()
        except sa.exc.OperationalError as exc:
            raise database_unavailable(self._where(), exc) from None

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        error = exc_info[1]
        try:
            self._context.__exit__(*exc_info)  # commits, or rolls back when the body raised
        except (sa.exc.SQLAlchemyError, psycopg.Error, WarehouseError) as exc:
            if error is None:  # the COMMIT failed
                if connection_failed(exc):
                    raise commit_unknown(self._where(), exc) from None
                if isinstance(exc, REFUSED):
                    raise load_refused(exc) from None
                raise
            # Else the ROLLBACK failed too, on a connection already gone: the server rolls the
            # transaction back by itself, and the body's error is the one worth reporting.
        if error is None:
            return False
        if connection_failed(error):
            raise load_interrupted(self._where(), error) from None
        if isinstance(error, REFUSED):
            raise load_refused(error) from None
        return False


class Warehouse(dg.ConfigurableResource):
    """The PostgreSQL database the tables live in: `DATABASE_URL`, or an embedded server."""

    # A secret (it may hold a password): pass dg.EnvVar("DATABASE_URL"), so run config and the
    # UI show the variable's name only.
    database_url: str | None = Field(default=None, repr=False)
    schema_name: str = DEFAULT_SCHEMA
    embedded_pgdata: str = DEFAULT_EMBEDDED_PGDATA
    # For `status`: never starts the embedded server nor restores the schema; read-only sessions.
    read_only: bool = False

    _engine: Engine | None = PrivateAttr(default=None)
    _restored: list[str] = PrivateAttr(default_factory=list)
    _run: tuple[str, str, str] | None = PrivateAttr(default=None)  # see verify_once_per_run

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        where = self.database_url or str(Path(self.embedded_pgdata).absolute())
        self._run = (context.run.run_id, where, self.schema_name) if context.run else None

    @property
    def schema(self) -> str:  # type: ignore[override]  # shadows pydantic v1's deprecated schema()
        return validate_schema_name(self.schema_name)

    def table(self, name: str) -> sa.Table:
        return table(self.schema, name)

    def embedded(self) -> EmbeddedStatus | None:
        """The embedded server's state, read without starting it; None with DATABASE_URL."""
        return None if self.database_url else embedded_status(Path(self.embedded_pgdata).absolute())

    def url(self) -> sa.URL:
        if self.database_url:
            try:
                return parse_database_url(self.database_url)
            except DatabaseUrlError as exc:
                raise WarehouseError(str(exc)) from None
        if self.read_only:
            embedded = self.embedded()
            if embedded is None or embedded.url is None:
                raise EmbeddedStopped(f"{self.describe()} is stopped")
            return parse_database_url(embedded.url)
        try:
            url = start_embedded_postgres(Path(self.embedded_pgdata).absolute())
        except EmbeddedPostgresError as exc:
            raise WarehouseError(str(exc)) from None
        return parse_database_url(url)

    def describe(self) -> str:
        """Where the data is, for people: never with a password."""
        if self.database_url:
            return redact_database_url(self.database_url)
        return f"the embedded PostgreSQL in {Path(self.embedded_pgdata).absolute()}"

    def get_engine(self) -> Engine:
        if self._engine is None:
            engine = sa.create_engine(self.url(), pool_pre_ping=True, **self._read_only_args())
            # A refused or dropped connection, wherever SQLAlchemy meets it (reads included),
            # becomes one line naming the server; other errors pass through untouched.
            sa.event.listen(engine, "handle_error", self._on_database_error)
            try:
                if not self.read_only:
                    verify_once_per_run(self._run, lambda: self._ensure_schema(engine))
            except BaseException:
                engine.dispose()  # no half-ready engine: the next attempt starts over
                raise
            self._engine = engine
        return self._engine

    def _read_only_args(self) -> dict[str, Any]:
        options = "-c default_transaction_read_only=on"
        connect = {"connect_timeout": READ_ONLY_CONNECT_TIMEOUT_SECONDS, "options": options}
        return {"connect_args": connect} if self.read_only else {}

    def _on_database_error(self, context: sa.engine.ExceptionContext) -> None:
        if not context.is_pre_ping and connection_failed(context.original_exception):
            raise database_unavailable(self.describe(), context.original_exception)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        forget_run(self._run)
        self.dispose()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _ensure_schema(self, engine: Engine) -> None:
        """Restore what the declared schema has and the database lacks (a table dropped by
        hand takes the foreign keys of other tables with it: they come back too), except
        what the rows in place forbid: reads go on, and the next load restores it or refuses."""
        try:
            with engine.begin() as conn:
                healing = self._heal(conn, strict=False)
        except sa.exc.OperationalError as exc:
            raise database_unavailable(self.describe(), exc) from None
        for line in healing.left:
            dg.get_dagster_logger().warning("%s (the next load of the tables restores it)", line)

    def _heal(self, conn: sa.Connection, *, strict: bool) -> Healing:
        healing = heal_warehouse(conn, self.schema, self.describe(), strict=strict)
        self._restored += healing.restored
        return healing

    @property
    def restored(self) -> list[str]:
        """What this resource restored (tables, columns, keys, indexes), [] when nothing."""
        return list(self._restored)

    def transaction(self) -> Transaction:
        return Transaction(self.get_engine, self.describe)

    # ---- raw answers ----------------------------------------------------------------------

    def append_raw(self, asset: str, run_id: str, records: Iterable[RawRecord]) -> int:
        """Append records in one transaction, streamed through COPY; returns how many."""
        with self.transaction() as conn:
            return copy_records(driver(conn).cursor(), self.schema, asset, run_id, records)

    def _latest(self, asset: str, keys: Keys, column: str) -> dict[str, Any]:
        with self.get_engine().connect() as conn:
            cursor = driver(conn).cursor()
            cursor.execute(*latest_statement(self.schema, [column], asset, keys))
            return {row[0]: row[1] for row in cursor.fetchall()}

    def latest_raw(self, asset: str, partition_keys: Keys) -> dict[str, Any]:
        """The latest stored answer per partition, verbatim (partitions never stored are absent),
        as Python objects: for a few partitions; tables read many in SQL (`RawPartitions`)."""
        found = self._latest(asset, partition_keys, "payload")
        again: Keys = list(found)
        if isinstance(partition_keys, Mapping):  # per competition: the same competitions again
            again = {k: partition_keys[k] for k in found}
        exact = {k: v for k, v in self._latest(asset, again, "payload_exact").items() if v}
        return {k: json.loads(exact[k]) if k in exact else v for k, v in found.items()}

    def latest_raw_sha256(self, asset: str, partition_keys: Keys) -> dict[str, str]:
        """The SHA-256 of the latest stored answer per partition; partitions never stored absent."""
        return self._latest(asset, partition_keys, "payload_sha256")

    def query_latest(self, asset: str, partition_keys: Keys, select: str) -> list[dict[str, Any]]:
        """Run `select` over `latest(partition_key, payload, sanitized_fields)`: the latest
        answer of each of these partitions of `asset`."""
        latest, params = latest_statement(
            self.schema, ["payload", "sanitized_fields"], asset, partition_keys
        )
        statement = sql.SQL("WITH latest AS ({latest}) {select}").format(
            latest=latest,
            select=sql.SQL(select),  # type: ignore[arg-type]
        )
        with self.get_engine().connect() as conn:
            cursor = driver(conn).cursor()
            cursor.execute(statement, params)
            names = [d.name for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # ---- tables -----------------------------------------------------------------------

    def load_tables(
        self,
        loads: Sequence[tuple[str, Rows]],
        *,
        inputs_version: str | None = None,
        run_id: str = "",
        history_columns: list[str] | None = None,
    ) -> dict[str, LoadStats]:
        """Make each named table hold exactly its rows, in order, in ONE transaction (a failure
        leaves every table as it was; equal rows are not written); with `history_columns` the
        history tables are rebuilt, with `inputs_version` the build's inputs recorded, in it too."""
        with self.transaction() as conn:
            self._heal(conn, strict=True)  # what reads could not restore, with the load
            return load_all(
                driver(conn).cursor(),
                tables(self.schema),
                loads,
                history_columns=history_columns,
                inputs_version=inputs_version,
                run_id=run_id,
            )

    def read_frame(self, name: str) -> pd.DataFrame:
        """The table as a pandas DataFrame (pandas is imported here only, when asked for)."""
        import pandas as pd

        table = self.table(name)
        with self.get_engine().connect() as conn:
            return pd.read_sql_query(sa.select(table), conn)

    def present_tables(self) -> set[str]:
        """The names of the tables the schema holds now (none before the first connection)."""
        found = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :schema",
            schema=self.schema,
        )
        return {str(row["table_name"]) for row in found}

    def count_rows(self, name: str) -> int:
        table = self.table(name)
        with self.get_engine().connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def query(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        """Run a read-only statement; `{schema}` in it becomes the quoted schema name (identifiers
        come from this project's code, never from users; values go in `params`)."""
        text = statement.replace("{schema}", f'"{self.schema}"')
        with self.get_engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(text), params)]
