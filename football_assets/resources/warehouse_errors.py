"""PostgreSQL's failures as one line each (unavailable: retried; refused: not), the `Transaction`
that words them, and the schema-name check."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, cast

import psycopg
import sqlalchemy as sa


class WarehouseError(Exception):
    """The warehouse refused or failed; str() is one line saying what and what to do."""


class SchemaNameError(WarehouseError, ValueError):
    """FOOTBALL_DB_SCHEMA is unusable; str() is one line naming it and what to use."""


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def validate_schema_name(name: str) -> str:
    """The name, if it is a plain, private, lower-case identifier (it goes into every statement)."""
    if not _IDENTIFIER.fullmatch(name):
        raise SchemaNameError(
            f"FOOTBALL_DB_SCHEMA={name!r} is not a valid schema name: use lower-case letters, "
            "digits and underscores, starting with a letter (e.g. 'football')."
        )
    if name == "public" or name.startswith("pg_"):
        raise SchemaNameError(
            f"FOOTBALL_DB_SCHEMA={name!r} is reserved: the warehouse keeps to a private schema "
            "such as 'football'."
        )
    return name


class DatabaseUnavailable(WarehouseError):
    """The server refused or lost the connection: worth a re-run, unlike a refused statement.
    `detail` is the driver's own one-line reason."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class LoadRefused(WarehouseError):
    """PostgreSQL refused the data (a constraint, a value): a re-run would be refused too."""


# SQLSTATE classes of a connection failure, and the server shutting down or restarting.
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")
_REFUSED = (
    psycopg.errors.IntegrityError,
    psycopg.errors.DataError,
    sa.exc.IntegrityError,
    sa.exc.DataError,
)


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


def database_unavailable(where: str, exc: BaseException) -> DatabaseUnavailable:
    detail = _detail(exc)
    return DatabaseUnavailable(
        f"PostgreSQL at {where} is unavailable ({detail}); nothing was changed. "
        "Check DATABASE_URL and that the server is up, then re-run.",
        detail,
    )


def load_interrupted(where: str, exc: BaseException) -> DatabaseUnavailable:
    detail = _detail(exc)
    return DatabaseUnavailable(
        f"Lost the connection to PostgreSQL at {where} during a load ({detail}); it was rolled "
        "back, so every table keeps its previous contents. Re-run once the server is back.",
        detail,
    )


def commit_unknown(where: str, exc: BaseException) -> DatabaseUnavailable:
    detail = _detail(exc)
    return DatabaseUnavailable(
        f"Lost the connection to PostgreSQL at {where} while committing a load ({detail}); "
        "the tables hold their previous or their new contents, never a mix. "
        "Re-run to be sure they hold the new.",
        detail,
    )


def load_refused(exc: BaseException) -> LoadRefused:
    """A constraint or a value refused the load: say which, and that nothing changed."""
    orig = getattr(exc, "orig", exc)
    diag = getattr(orig, "diag", None)
    primary = (getattr(diag, "message_primary", None) or str(orig).splitlines()[0]).strip()
    detail = (getattr(diag, "message_detail", None) or "").strip()
    table = getattr(diag, "table_name", None)
    column = getattr(diag, "column_name", None)
    where = f" in {table}" + (f".{column}" if column else "") if table else ""
    return LoadRefused(
        f"PostgreSQL refused the load{where}: {primary}"
        + (f" ({detail})" if detail else "")
        + "; every table keeps its previous contents."
    )


class Transaction:
    """`with Transaction(engine_fn, where) as conn:` — one transaction, failures as one line.

    `engine_fn` gives the engine (connecting lazily); `where` names the server for messages.
    """

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
                if isinstance(exc, _REFUSED):
                    raise load_refused(exc) from None
                raise
            # Else the ROLLBACK failed too, on a connection already gone: the server rolls the
            # transaction back by itself, and the body's error is the one worth reporting.
        if error is None:
            return False
        if connection_failed(error):
            raise load_interrupted(self._where(), error) from None
        if isinstance(error, _REFUSED):
            raise load_refused(error) from None
        return False


def driver(conn: sa.Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under SQLAlchemy's, for COPY and server-side SQL."""
    driver = conn.connection.driver_connection
    if driver is None:  # only after the pool invalidated it; the caller's error path applies
        raise DatabaseUnavailable("The connection to PostgreSQL is closed.", "closed")
    return cast("psycopg.Connection[Any]", driver)
