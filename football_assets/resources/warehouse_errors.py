"""PostgreSQL's failures as one line each (unavailable: retried; refused: not);
`warehouse.Transaction` says which one a failed transaction met."""

from __future__ import annotations

from typing import Any, cast

import psycopg
import sqlalchemy as sa


class WarehouseError(Exception):
    """The warehouse refused or failed; str() is one line saying what and what to do."""


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
REFUSED = (
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


def _unavailable(message: str, exc: BaseException) -> DatabaseUnavailable:
    """`message` with the driver's one-line reason in place of `<detail>`."""
    detail = _detail(exc)
    return DatabaseUnavailable(message.replace("<detail>", detail), detail)


def database_unavailable(where: str, exc: BaseException) -> DatabaseUnavailable:
    return _unavailable(
        f"PostgreSQL at {where} is unavailable (<detail>); nothing was changed. "
        "Check DATABASE_URL and that the server is up, then re-run.",
        exc,
    )


def load_interrupted(where: str, exc: BaseException) -> DatabaseUnavailable:
    return _unavailable(
        f"Lost the connection to PostgreSQL at {where} during a load (<detail>); it was rolled "
        "back, so every table keeps its previous contents. Re-run once the server is back.",
        exc,
    )


def commit_unknown(where: str, exc: BaseException) -> DatabaseUnavailable:
    return _unavailable(
        f"Lost the connection to PostgreSQL at {where} while committing a load (<detail>); "
        "the tables hold their previous or their new contents, never a mix. "
        "Re-run to be sure they hold the new.",
        exc,
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


def driver(conn: sa.Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under SQLAlchemy's, for COPY and server-side SQL."""
    driver = conn.connection.driver_connection
    if driver is None:  # only after the pool invalidated it; the caller's error path applies
        raise DatabaseUnavailable("The connection to PostgreSQL is closed.", "closed")
    return cast("psycopg.Connection[Any]", driver)
