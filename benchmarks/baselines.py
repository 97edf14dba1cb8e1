"""What a scale's tables are held against: a COPY of their rows, the served data, and a
PostgreSQL-backed Dagster instance for `--instance postgres`."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine.url import make_url

from benchmarks.harness import psycopg_url
from benchmarks.synthetic import expected_tables
from test_support.api_double import ApiData

WAREHOUSE_TABLES = ("dim_competitions", "dim_teams", "fact_competitions")


def copy_baseline(url: str, schema: str, repeat: int = 3) -> dict[str, float | int]:
    """Seconds a COPY of the tables' final rows takes (best of `repeat`), two ways, and rows.

    The rows are copied out, then timed going back in through COPY FROM STDIN: `copy_s` into
    fresh tables of the same shape (columns, primary keys, indexes; no foreign keys, the
    issue's plain COPY), `copy_fk_s` into the real tables, emptied inside a transaction that is
    rolled back, so with their foreign keys checked row by row as every load must.
    """
    plain = constrained = float("inf")
    dumps: dict[str, bytes] = {}
    with psycopg.connect(psycopg_url(url)) as conn:
        for table in WAREHOUSE_TABLES:  # dimensions first, for the foreign keys
            buffer = io.BytesIO()
            with (
                conn.cursor() as cur,
                cur.copy(
                    sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(schema, table))
                ) as copy,
            ):
                for chunk in copy:
                    buffer.write(chunk)
            dumps[table] = buffer.getvalue()
        conn.rollback()

        def timed_copies(targets: Mapping[str, sql.Composable]) -> float:
            total = 0.0
            with conn.cursor() as cur:
                for table, target in targets.items():
                    started = time.perf_counter()
                    with cur.copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
                        copy.write(dumps[table])
                    total += time.perf_counter() - started
            return total

        for _ in range(repeat):
            fresh = {t: sql.Identifier(f"copy_{t}") for t in WAREHOUSE_TABLES}
            for table, target in fresh.items():
                conn.execute(
                    sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING ALL)").format(
                        target, sql.Identifier(schema, table)
                    )
                )
            plain = min(plain, timed_copies(fresh))
            conn.rollback()
            real = {t: sql.Identifier(schema, t) for t in WAREHOUSE_TABLES}
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(real.values())))
            constrained = min(constrained, timed_copies(real))
            conn.rollback()
    rows = sum(data.count(b"\n") for data in dumps.values())
    return {"copy_s": plain, "copy_fk_s": constrained, "rows": rows}


def check_tables(url: str, schema: str, output_dir: Path, data: ApiData) -> list[str]:
    """Differences between what the warehouse and the CSV hold and the served data."""
    expected = expected_tables(data)
    problems: list[str] = []

    def fetch(query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(psycopg_url(url)) as conn:
            return conn.execute(query.format(s=f'"{schema}"')).fetchall()  # type: ignore[arg-type]

    competitions = {
        r[0]: tuple(r[1:])
        for r in fetch(
            "SELECT id, name, code, type, plan, area_id, area_name, area_code, emblem, "
            "current_season_start, current_season_end, last_updated FROM {s}.dim_competitions"
        )
    }
    teams = {
        r[0]: tuple(r[1:])
        for r in fetch(
            "SELECT id, name, short_name, tla, crest, address, website, founded, club_colors, "
            "venue, area_id, area_name, area_code, last_updated FROM {s}.dim_teams"
        )
    }
    pairs = {
        (r[0], r[1]) for r in fetch("SELECT competition_id, team_id FROM {s}.fact_competitions")
    }
    for name, got, want in (
        ("dim_competitions", competitions, expected["competitions"]),
        ("dim_teams", teams, expected["teams"]),
    ):
        if got != want:
            wrong = sum(1 for k, v in want.items() if got.get(k) != v) + len(got.keys() - want)
            problems.append(f"{name}: {len(got)} rows, expected {len(want)}; {wrong} differ")
    if pairs != expected["pairs"]:
        wrong = len(pairs ^ expected["pairs"])
        problems.append(
            f"fact_competitions: {len(pairs)} rows, expected {len(expected['pairs'])}; "
            f"{wrong} differ"
        )
    summary_path = output_dir / "summary.csv"
    if not summary_path.exists():
        problems.append("summary.csv: missing")
    else:
        with summary_path.open(encoding="utf-8", newline="") as handle:
            summary = list(csv.reader(handle))[1:]
        if summary != expected["summary"]:
            problems.append(f"summary.csv: {len(summary)} rows differ from the served data")
    return problems


def write_postgres_instance(home: Path, database_url: str, name: str) -> None:
    """Make DAGSTER_HOME a Postgres-backed instance (runs, events, schedules) in database
    `name` of the benchmark's server, like the compose deployment's deploy/dagster.yaml."""
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    # psycopg2, as deploy/dagster.yaml explains: dagster-postgres' NOTIFY breaks on psycopg 3.
    url = make_url(database_url).set(drivername="postgresql+psycopg2", database=name)
    postgres_url = url.render_as_string(hide_password=False)
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {json.dumps(postgres_url)}\n"
        "telemetry:\n  enabled: false\n",
        encoding="utf-8",
    )
