"""A password in DATABASE_URL, in every form PostgreSQL accepts, never leaves the process.

`football-assets` runs as a user runs it (a subprocess with its own DAGSTER_HOME), once
successfully and once against a server that refuses connections. The canary password is then
looked for in stdout, stderr and every file the refresh wrote: the instance's SQLite run and
event storage, opened and searched cell by cell with compressed blobs decompressed (run config,
tags, materialization metadata, errors, snapshots), Dagster's compute logs and the refresh's log
file, the output folder, and the warehouse's own tables.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import dagster as dg
import pytest

from football_assets.redaction import MASK
from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW
from football_assets_tests.test_resilience import TABLES, closed_port
from test_support import refresh_process
from test_support.api_double import FootballApiDouble

# Distinctive, with characters that need percent-encoding in a URL and escaping in JSON.
CANARY = "canary/pw@7c1e9b'x"
PLAIN_CANARY = "canary-pw-3d8f2a6b"
KV_CANARY = CANARY.replace("'", "\\'")


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1], secret.replace("'", "\\'")}


def url_forms(host: str, port: str, socket_dir: str | None) -> dict[str, tuple[str, str]]:
    """{form: (DATABASE_URL, password)} for one server, in every form libpq takes a password."""
    where = f"/postgres?host={socket_dir}" if socket_dir else f"{host}:{port}/postgres"
    uri_host = "" if socket_dir else f"{host}:{port}"
    query = f"host={socket_dir}&" if socket_dir else ""
    kv_host = f"host={socket_dir}" if socket_dir else f"host={host} port={port}"
    return {
        "query": (
            f"postgresql://postgres@{where}{'&' if socket_dir else '?'}password={PLAIN_CANARY}",
            PLAIN_CANARY,
        ),
        "userinfo": (f"postgresql://postgres:{PLAIN_CANARY}@{where}", PLAIN_CANARY),
        "percent-encoded": (
            f"postgresql://postgres:{quote(CANARY, safe='')}@{uri_host}/postgres"
            + (f"?{query.rstrip('&')}" if query else ""),
            CANARY,
        ),
        # Quoted, its quote escaped with a backslash, as libpq reads it.
        "key-value": (f"{kv_host} user=postgres dbname=postgres password='{KV_CANARY}'", CANARY),
    }


def session_server(pg_url: str) -> tuple[str, str, str | None]:
    """(host, port, socket directory) of the session's PostgreSQL."""
    parts = urlsplit(pg_url)
    socket_dir = dict(p.split("=", 1) for p in parts.query.split("&") if p).get("host")
    return parts.hostname or "", str(parts.port or 5432), socket_dir


# ---- where to look --------------------------------------------------------------------------


def decoded(value: object) -> str:
    """A cell as text; a blob decompressed when it is zlib or gzip (Dagster's snapshots)."""
    if isinstance(value, bytes):
        for unpack in (zlib.decompress, gzip.decompress):
            try:
                value = unpack(value)
                break
            except (zlib.error, OSError, EOFError):
                continue
        return value.decode("utf-8", "replace")  # type: ignore[union-attr]
    return "" if value is None else str(value)


def sqlite_cells(path: Path) -> Iterator[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in names:
            for row in conn.execute(f'SELECT * FROM "{name}"'):  # noqa: S608 - sqlite's own names
                yield from (decoded(cell) for cell in row)
    finally:
        conn.close()


def everything_written(home: Path, output_dir: Path) -> tuple[list[str], dict[str, int]]:
    """Texts of every file under the instance and the output, and how many of each kind."""
    texts: list[str] = []
    kinds = {"sqlite": 0, "compute_log": 0, "other": 0, "cells": 0}
    for root in (home, output_dir):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            texts.append(decoded(data))
            if data.startswith(b"SQLite format 3"):
                kinds["sqlite"] += 1
                cells = list(sqlite_cells(path))
                kinds["cells"] += len(cells)
                texts += cells
            elif "compute_logs" in path.parts:
                kinds["compute_log"] += 1
            else:
                kinds["other"] += 1
    return texts, kinds


def instance_texts(home: Path) -> list[str]:
    """What the UI shows: every run (config, tags) and every event (metadata, errors)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        texts = [dg.serialize_value(run) for run in runs]
        for run in runs:
            texts += [dg.serialize_value(event) for event in instance.all_logs(run.run_id)]
    return texts


def leaks(texts: list[str], secret: str) -> list[str]:
    found = []
    for text in texts:
        for spelling in spellings(secret):
            at = text.find(spelling)
            if at >= 0:
                found.append(text[max(0, at - 60) : at + 60])
    return found


# ---- the tests ------------------------------------------------------------------------------


def cli_env(
    home: Path, double: FootballApiDouble, database_url: str, schema: str
) -> dict[str, str]:
    return refresh_process.live_env(
        home,
        double.base_url,
        TEST_KEY,
        database_url,
        schema,
        limit=TEST_LIMIT,
        window_seconds=TEST_WINDOW,
        output_dir=home.parent / "output",
    )


@pytest.mark.parametrize("form", ["query", "key-value"])
def test_a_refresh_keeps_the_password_out_of_output_storage_and_logs(
    form: str,
    tmp_path: Path,
    api_double: FootballApiDouble,
    pg_url: str,
    schema: str,
    output_dir: Path,
) -> None:
    url, password = url_forms(*session_server(pg_url))[form]
    home = tmp_path / "dagster_home"
    env = cli_env(home, api_double, url, schema)

    done = refresh_process.run("refresh", cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr
    assert MASK in done.stdout.splitlines()[0]  # where the data goes, password hidden
    written, kinds = everything_written(home, output_dir)
    # It all happened: run and event storage, compute logs, the log file, the summary.
    assert kinds["sqlite"] >= 3 and kinds["cells"] > 1000 and kinds["compute_log"] > 0, kinds
    assert (output_dir / "summary.csv").exists()
    warehouse = Warehouse(database_url=pg_url, schema_name=schema)
    try:
        # Every table of the schema: the warehouse's, and the request budget's.
        tables = [
            r["table_name"]
            for r in warehouse.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s",
                s=schema,
            )
        ]
        assert set(TABLES) < set(tables)
        stored = [
            row["t"]
            for table in tables
            for row in warehouse.query(f'SELECT t::text AS t FROM {{schema}}."{table}" AS t')  # noqa: S608
        ]
    finally:
        warehouse.dispose()
    assert len(stored) > 500
    texts = [done.stdout, done.stderr, *written, *instance_texts(home), *stored]
    assert leaks(texts, password) == []


@pytest.mark.parametrize("form", ["query", "userinfo", "percent-encoded", "key-value"])
def test_a_refused_connection_names_the_server_without_the_password(
    form: str, tmp_path: Path, schema: str, output_dir: Path
) -> None:
    url, password = url_forms("127.0.0.1", str(closed_port()), None)[form]
    home = tmp_path / "dagster_home"
    # Offline (the snapshot): the first thing to reach PostgreSQL is the warehouse itself.
    env = refresh_process.user_env(
        DATABASE_URL=url,
        FOOTBALL_DB_SCHEMA=schema,
        DAGSTER_HOME=str(home),
        FOOTBALL_OUTPUT_DIR=str(output_dir),
    )

    done = refresh_process.run("refresh", cwd=tmp_path, env=env)

    assert done.returncode == 1
    shown = f"postgresql://postgres:{MASK}@127.0.0.1:"
    assert shown in done.stdout.splitlines()[0]
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"football-assets: refresh failed at raw_competitions: PostgreSQL at {shown}"
    ), line
    assert "Connection refused" in line and "Traceback" not in done.stdout + done.stderr
    written, kinds = everything_written(home, output_dir)
    assert kinds["sqlite"] >= 2, kinds
    assert leaks([done.stdout, done.stderr, *written, *instance_texts(home)], password) == []


@pytest.mark.parametrize("form", ["query", "userinfo", "percent-encoded", "key-value"])
def test_db_url_hides_the_password(form: str, tmp_path: Path) -> None:
    url, password = url_forms("db.example", "5432", None)[form]
    env = refresh_process.user_env(DATABASE_URL=url, DAGSTER_HOME=str(tmp_path / "home"))

    done = refresh_process.run("db", "url", cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"postgresql://postgres:{MASK}@db.example:5432/postgres"
    assert leaks([done.stdout, done.stderr], password) == []
