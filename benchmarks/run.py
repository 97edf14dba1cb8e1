"""The pipeline against its physical limits: `python -m benchmarks.run --scales 13x20,400x50`.

For each scale (`CxT`: competitions x teams each; `CxT:R` or `CxT:R/W` to set the requests per
window and the window): synthetic answers served by the loopback API double at R requests per
W seconds, then `football-assets refresh` in a subprocess (the command users run) against a real
PostgreSQL, twice: a cold run and a rerun on unchanged data. Timings come from the Dagster
instance's own step events; the floors are measured in the same run:

- API phase: raw_competitions start -> raw_teams success, against floor(N/R) * W, the least
  time N+1 requests at R per window can take; split into the requests (first to last) and
  Dagster's bookkeeping around them;
- warehouse phase: the dims, fact and summary steps, against four empty materializations
  (Dagster's fixed cost) and a COPY of the very rows the tables ended up holding, both into
  plain tables and into the real ones with their foreign keys;
- peak memory of the refresh process (its own VmHWM, reported at exit by measured_cli).

Prints one table and writes everything as JSON (default benchmarks/results/latest.json).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql
from sqlalchemy.engine.url import make_url

from benchmarks.noop import NOOP_STEPS
from benchmarks.synthetic import expected_tables, synthetic_data
from football_assets.resources.postgres_server import (
    start_embedded_postgres,
    stop_embedded_postgres,
)
from test_support.api_double import ApiData, FootballApiDouble

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO / "benchmarks" / "results" / "latest.json"
API_KEY = "benchmark-key"
WAREHOUSE_TABLES = ("dim_competitions", "dim_teams", "fact_competitions")
# The three tables load in one step (one transaction); the report is a step of its own.
WAREHOUSE_STEPS = ("warehouse_tables", "summary_csv")
API_STEPS = ("raw_competitions", "raw_teams")

# Targets of issue 6, checked against whichever scales ran.
API_RATIO_TARGET = 1.15
WAREHOUSE_400_TARGET_S = 2.0
WAREHOUSE_COPY_FACTOR = 3.0
PEAK_MEMORY_TARGET_MIB = 1024


@dataclass(frozen=True)
class Scale:
    competitions: int
    teams_each: int
    limit: int  # R: requests per window
    window: float | None = None  # W in seconds; None: the run's --window

    @property
    def label(self) -> str:
        return f"{self.competitions}x{self.teams_each}"

    def slug(self, window: float) -> str:
        """Unique per configuration: names the scale's folder, schema and instance database."""
        return f"{self.label}_r{self.limit}_w{window:g}".replace(".", "_")

    @classmethod
    def parse(cls, text: str) -> Scale:
        """`400x50`, `400x50:100` or `13x20:10/20` (C x T, then R per W seconds).

        R defaults to a tenth of N (at least 10): ten windows; W to the run's --window.
        """
        spec, _, rate = text.strip().partition(":")
        competitions, _, teams = spec.lower().partition("x")
        n, t = int(competitions), int(teams)
        limit, _, window = rate.partition("/")
        return cls(
            n, t, int(limit) if limit else max(10, n // 10), float(window) if window else None
        )


def floor_seconds(competitions: int, limit: int, window: float) -> float:
    """N+1 requests at R per window W cannot finish sooner than floor(N/R) windows."""
    return (competitions // limit) * window


# ---- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    returncode: int
    wall_s: float
    stdout: str
    stderr: str


def run_process(args: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float) -> Process:
    """Run to completion (killed after `timeout`), output captured in files, not pipes."""
    out_path, err_path = cwd / ".bench.stdout", cwd / ".bench.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(args), cwd=cwd, env=env, stdout=out, stderr=err)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        wall = time.perf_counter() - started
    return Process(
        returncode=proc.returncode,
        wall_s=wall,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
    )


def user_env(**settings: str) -> dict[str, str]:
    """This environment without football/Dagster settings of its own, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FOOTBALL_") and k not in {"DATABASE_URL", "DAGSTER_HOME"}
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(settings)
    return env


# ---- Dagster's own timings -----------------------------------------------------------------


@dataclass
class RunTimes:
    run_id: str
    started: float
    ended: float
    steps: dict[str, tuple[float, float]]  # step key -> (start, success)

    @property
    def wall_s(self) -> float:
        return self.ended - self.started


def run_times(instance: dg.DagsterInstance, run_id: str) -> RunTimes:
    kinds = {
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
    }
    started = ended = 0.0
    starts: dict[str, float] = {}
    steps: dict[str, tuple[float, float]] = {}
    for entry in instance.all_logs(run_id, of_type=kinds):
        kind = entry.dagster_event_type
        if kind == dg.DagsterEventType.RUN_START:
            started = entry.timestamp
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            ended = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_START and entry.step_key:
            starts[entry.step_key] = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_SUCCESS and entry.step_key:
            steps[entry.step_key] = (starts[entry.step_key], entry.timestamp)
    return RunTimes(run_id, started, ended, steps)


@contextmanager
def open_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def new_runs(home: Path, before: set[str]) -> list[RunTimes]:
    with open_instance(home) as instance:
        ids = [r.run_id for r in instance.get_runs() if r.run_id not in before]
        runs = [run_times(instance, run_id) for run_id in ids]
    return sorted(runs, key=lambda r: r.started)


def all_run_ids(home: Path) -> set[str]:
    if not home.exists():
        return set()
    with open_instance(home) as instance:
        return {r.run_id for r in instance.get_runs()}


def step(runs: list[RunTimes], key: str) -> tuple[float, float] | None:
    for run in runs:
        if key in run.steps:
            return run.steps[key]
    return None


def api_phase_s(runs: list[RunTimes]) -> float | None:
    first, last = step(runs, API_STEPS[0]), step(runs, API_STEPS[1])
    return last[1] - first[0] if first and last else None


def step_seconds(runs: list[RunTimes], keys: Sequence[str]) -> dict[str, float]:
    found = {key: step(runs, key) for key in keys}
    return {key: round(t[1] - t[0], 4) for key, t in found.items() if t}


# ---- PostgreSQL -----------------------------------------------------------------------------


def psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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


# ---- one scale ------------------------------------------------------------------------------


def drop_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def drop_database(database_url: str, name: str) -> None:
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


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


def measure_scale(
    scale: Scale, *, database_url: str, instance: str, window: float, **options: Any
) -> dict[str, Any]:
    """One scale in its own schema (and instance database), dropped before and after."""
    window = scale.window or window
    schema = f"bench_{scale.slug(window)}".lower()
    instance_db = f"dagster_{schema}" if instance == "postgres" else None
    drop_schema(database_url, schema)
    if instance_db:
        drop_database(database_url, instance_db)
    try:
        return _measure_scale(
            scale,
            window=window,
            database_url=database_url,
            schema=schema,
            instance_db=instance_db,
            **options,
        )
    finally:
        drop_schema(database_url, schema)
        if instance_db:
            drop_database(database_url, instance_db)


def _measure_scale(
    scale: Scale,
    *,
    window: float,
    database_url: str,
    schema: str,
    instance_db: str | None,
    workdir: Path,
    squad: int,
    timeout: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    home, output = workdir / "dagster_home", workdir / "output"
    home.mkdir(parents=True)
    if instance_db:
        write_postgres_instance(home, database_url, instance_db)
    data = synthetic_data(scale.competitions, scale.teams_each, squad=squad)
    pairs = sum(len(group) for group in data.teams.values())
    distinct_teams = len(data.team_ids())
    floor = floor_seconds(scale.competitions, scale.limit, window)
    result: dict[str, Any] = {
        "scale": scale.label,
        "competitions": scale.competitions,
        "teams_each": scale.teams_each,
        "pairs": pairs,
        "distinct_teams": distinct_teams,
        "squad_per_team": squad,
        "requests": scale.competitions + 1,
        "limit_per_window": scale.limit,
        "window_s": window,
        "api_floor_s": floor,
        "dagster_instance": "postgres" if instance_db else "sqlite",
    }
    # Request times are the double's monotonic clock; Dagster's events carry wall-clock time.
    wall_offset = time.time() - time.monotonic()
    with FootballApiDouble(
        data, api_key=API_KEY, limit=scale.limit, window_seconds=window
    ) as double:
        env = user_env(
            FOOTBALL_DATA_API_KEY=API_KEY,
            FOOTBALL_DATA_API_URL=double.base_url,
            FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(scale.limit),
            FOOTBALL_DATA_RATE_WINDOW_SECONDS=str(window),
            DATABASE_URL=database_url,
            FOOTBALL_DB_SCHEMA=schema,
            DAGSTER_HOME=str(home),
            FOOTBALL_OUTPUT_DIR=str(output),
        )
        # `football-assets refresh` itself, reporting its own peak memory (see measured_cli).
        refresh = [sys.executable, "-m", "benchmarks.measured_cli", "refresh"]
        peak_file = workdir / ".peak_kib"
        passes: list[dict[str, Any]] = []
        for name in ("cold", "rerun"):
            before_ids, before_requests = all_run_ids(home), len(double.requests)
            echo(f"[{scale.label}] refresh ({name}) ...")
            peak_file.unlink(missing_ok=True)
            proc = run_process(
                refresh,
                env={**env, "BENCHMARK_PEAK_FILE": str(peak_file)},
                cwd=workdir,
                timeout=timeout,
            )
            if proc.returncode != 0:
                said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
                raise RuntimeError(f"{scale.label} {name} refresh failed: " + " | ".join(said))
            runs = new_runs(home, before_ids)
            requests = double.requests[before_requests:]
            admitted = [r.time for r in requests if not r.refused]
            api_s = api_phase_s(runs)
            first, last = step(runs, API_STEPS[0]), step(runs, API_STEPS[1])
            head: float | None = None
            tail: float | None = None
            if admitted and first and last:
                head = min(admitted) + wall_offset - first[0]
                tail = last[1] - (max(admitted) + wall_offset)
            warehouse = step_seconds(runs, WAREHOUSE_STEPS)
            skip_lines = [ln for ln in proc.stdout.splitlines() if "skipped" in ln.lower()]
            passes.append(
                {
                    "wall_s": round(proc.wall_s, 3),
                    "peak_rss_mib": round(int(peak_file.read_text()) / 1024, 1),
                    "api_s": round(api_s, 3) if api_s is not None else None,
                    "api_ratio": round(api_s / floor, 3) if api_s and floor else None,
                    "requests": len(requests),
                    "refused": sum(1 for r in requests if r.refused),
                    "request_span_s": round(max(admitted) - min(admitted), 3) if admitted else 0,
                    # The API phase = head + request span + tail: Dagster before the first
                    # request (step start), and after the last (storing, materialization events).
                    "api_head_s": round(head, 3) if head is not None else None,
                    # From GET /competitions (run 1) to the first GET .../teams (run 2): run 1
                    # ending and run 2 starting, which logs a planned event per partition.
                    "api_gap_s": round(admitted[1] - admitted[0], 3) if len(admitted) > 1 else None,
                    "api_tail_s": round(tail, 3) if tail is not None else None,
                    "warehouse_steps_s": warehouse,
                    "warehouse_s": round(sum(warehouse.values()), 4),
                    "rebuilt": sorted(warehouse),
                    "skip_message": skip_lines[-1].strip() if skip_lines else None,
                    "runs": [
                        {"run_id": r.run_id, "steps": sorted(r.steps), "wall_s": round(r.wall_s, 3)}
                        for r in runs
                    ],
                }
            )
    cold, rerun = passes
    echo(f"[{scale.label}] Dagster's fixed cost, COPY baseline, correctness ...")
    noop = run_process(
        [sys.executable, "-m", "benchmarks.noop"],
        env=user_env(DAGSTER_HOME=str(home)),
        cwd=workdir,
        timeout=timeout,
    )
    if noop.returncode != 0:
        raise RuntimeError(f"benchmarks.noop failed: {noop.stderr.strip()[-500:]}")
    with open_instance(home) as instance:
        noop_times = run_times(instance, noop.stdout.strip().splitlines()[-1])
    overhead = sum(noop_times.steps[s][1] - noop_times.steps[s][0] for s in NOOP_STEPS.values())
    copies = copy_baseline(database_url, schema)
    copy_s, copy_fk_s, rows = (
        float(copies["copy_s"]),
        float(copies["copy_fk_s"]),
        int(copies["rows"]),
    )
    problems = check_tables(database_url, schema, output, data)
    above = cold["warehouse_s"] - overhead
    result.update(
        {
            "wall_s": cold["wall_s"],
            "api_s": cold["api_s"],
            "api_ratio": cold["api_ratio"],
            "refused": cold["refused"] + rerun["refused"],
            "request_span_s": cold["request_span_s"],
            "request_span_ratio": round(cold["request_span_s"] / floor, 3) if floor else None,
            # Dagster's bookkeeping inside the API phase (run start, per-partition metadata and
            # events): the API phase minus the time between the first and the last request.
            "api_dagster_s": round(cold["api_s"] - cold["request_span_s"], 3)
            if cold["api_s"] is not None
            else None,
            "api_head_s": cold["api_head_s"],
            "api_gap_s": cold["api_gap_s"],
            "api_tail_s": cold["api_tail_s"],
            "warehouse_s": cold["warehouse_s"],
            "warehouse_steps_s": cold["warehouse_steps_s"],
            "overhead_s": round(overhead, 4),
            "warehouse_above_overhead_s": round(above, 4),
            "rows": rows,
            "copy_s": round(copy_s, 4),
            "copy_fk_s": round(copy_fk_s, 4),
            "warehouse_vs_copy": round(above / copy_s, 2) if copy_s else None,
            "warehouse_vs_copy_fk": round(above / copy_fk_s, 2) if copy_fk_s else None,
            "warehouse_us_per_row": round(above / rows * 1e6, 2) if rows else None,
            "copy_us_per_row": round(copy_s / rows * 1e6, 2) if rows else None,
            "peak_rss_mib": cold["peak_rss_mib"],
            "rerun_skipped": not rerun["rebuilt"],
            "correct": not problems,
            "problems": problems,
            "passes": {"cold": cold, "rerun": rerun},
            "noop_run": {"run_id": noop_times.run_id, "wall_s": round(noop_times.wall_s, 3)},
        }
    )
    return result


# ---- report ---------------------------------------------------------------------------------


def machine(database_url: str) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo")
    total_kib = 0
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                total_kib = int(line.split()[1])
    with psycopg.connect(psycopg_url(database_url)) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": round(total_kib / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": server[0] if server else None,
        "dagster": dg.__version__,
        "commit": commit,
    }


def targets(scales: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 6's targets, evaluated on the scales that ran (None: that scale did not run)."""
    by_label = {s["scale"]: s for s in scales}
    big, mid = by_label.get("4000x50"), by_label.get("400x50")
    linear = None
    if big and mid and mid["warehouse_us_per_row"]:
        linear = round(big["warehouse_us_per_row"] / mid["warehouse_us_per_row"], 2)
    return {
        "api_within_1.15x_floor": {
            f"{s['scale']} at {s['limit_per_window']}/{s['window_s']:g}s": s["api_ratio"]
            is not None
            and s["api_ratio"] <= API_RATIO_TARGET
            for s in scales
        },
        "zero_refused": all(s["refused"] == 0 for s in scales),
        "warehouse_400x50_within_2s_of_overhead": (
            mid["warehouse_above_overhead_s"] <= WAREHOUSE_400_TARGET_S if mid else None
        ),
        "warehouse_4000x50_within_3x_copy": (
            big["warehouse_above_overhead_s"] <= WAREHOUSE_COPY_FACTOR * big["copy_s"]
            if big
            else None
        ),
        "warehouse_4000x50_within_3x_copy_with_foreign_keys": (
            big["warehouse_above_overhead_s"] <= WAREHOUSE_COPY_FACTOR * big["copy_fk_s"]
            if big
            else None
        ),
        "per_row_cost_4000x50_over_400x50": linear,
        "peak_4000x50_under_1GiB": (big["peak_rss_mib"] < PEAK_MEMORY_TARGET_MIB if big else None),
        "rerun_rebuilds_nothing": all(s["rerun_skipped"] for s in scales),
        "data_correct": all(s["correct"] for s in scales),
    }


COLUMNS = [
    ("scale", "scale", "{}"),
    ("R/W", None, None),
    ("floor s", "api_floor_s", "{:.1f}"),
    ("API s", "api_s", "{:.1f}"),
    ("API/floor", "api_ratio", "{:.2f}"),
    ("requests/floor", "request_span_ratio", "{:.2f}"),
    ("refused", "refused", "{}"),
    ("rows", "rows", "{}"),
    ("warehouse s", "warehouse_s", "{:.2f}"),
    ("Dagster s", "overhead_s", "{:.2f}"),
    ("COPY s", "copy_s", "{:.3f}"),
    ("COPY+FK s", "copy_fk_s", "{:.3f}"),
    ("÷COPY", "warehouse_vs_copy", "{:.1f}"),
    ("÷COPY+FK", "warehouse_vs_copy_fk", "{:.1f}"),
    ("µs/row", "warehouse_us_per_row", "{:.1f}"),
    ("peak MiB", "peak_rss_mib", "{:.0f}"),
    ("wall s", "wall_s", "{:.1f}"),
    ("rerun s", None, None),
    ("rerun rebuilt", None, None),
    ("correct", "correct", "{}"),
]


def table(scales: list[dict[str, Any]]) -> str:
    rows = []
    for s in scales:
        row = []
        for title, key, fmt in COLUMNS:
            if title == "R/W":
                row.append(f"{s['limit_per_window']}/{s['window_s']:g}s")
            elif title == "rerun s":
                row.append(f"{s['passes']['rerun']['wall_s']:.1f}")
            elif title == "rerun rebuilt":
                row.append(", ".join(s["passes"]["rerun"]["rebuilt"]) or "nothing")
            else:
                value = s.get(key) if key else None
                row.append("-" if value is None or fmt is None else fmt.format(value))
        rows.append(row)
    headers = [c[0] for c in COLUMNS]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join(lines)


def run_benchmark(
    scales: Sequence[Scale],
    *,
    window: float = 2.0,
    squad: int = 0,
    instance: str = "sqlite",
    database_url: str | None = None,
    workdir: Path | None = None,
    json_path: Path | None = DEFAULT_JSON,
    timeout: float = 3600.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every scale; stop every server this started, also on failure."""
    root = Path(tempfile.mkdtemp(prefix="football-bench-", dir=workdir))
    pgdata = root / "pgdata"
    started_pg = database_url is None
    try:
        url = database_url or start_embedded_postgres(pgdata)
        results = [
            measure_scale(
                scale,
                window=window,
                database_url=url,
                workdir=root / scale.slug(scale.window or window),
                squad=squad,
                instance=instance,
                timeout=timeout,
                echo=echo,
            )
            for scale in scales
        ]
        report = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python -m benchmarks.run " + " ".join(sys.argv[1:]),
            "machine": machine(url),
            "entry_point": (
                "football-assets refresh (via python -m benchmarks.measured_cli refresh)"
            ),
            "scales": results,
            "targets": targets(results),
        }
    finally:
        if started_pg:
            stop_embedded_postgres(pgdata)
        shutil.rmtree(root, ignore_errors=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(json_path)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--scales",
        default="13x20,400x50,4000x50",
        help="comma-separated CxT[:R] (competitions x teams each, R requests per window)",
    )
    parser.add_argument("--window", type=float, default=2.0, help="rate window W in seconds")
    parser.add_argument("--squad", type=int, default=0, help="players per team (payload weight)")
    parser.add_argument(
        "--instance",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="Dagster instance storage: sqlite (what `football-assets` uses out of the box) or "
        "postgres (as the compose deployment), on the benchmark's PostgreSQL",
    )
    parser.add_argument("--database-url", help="a PostgreSQL to use instead of an embedded one")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the JSON goes")
    args = parser.parse_args(argv)
    scales = [Scale.parse(s) for s in args.scales.split(",") if s.strip()]
    report = run_benchmark(
        scales,
        window=args.window,
        squad=args.squad,
        instance=args.instance,
        database_url=args.database_url,
        json_path=args.json,
    )
    m = report["machine"]
    print()
    print(
        f"{m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, PostgreSQL "
        f"{m['postgresql']}, Dagster {m['dagster']}, commit {m['commit']}"
    )
    print(table(report["scales"]))
    for s in report["scales"]:
        message = s["passes"]["rerun"]["skip_message"]
        if message:
            print(f"{s['scale']} rerun: {message}")
        for problem in s["problems"]:
            print(f"{s['scale']} WRONG DATA: {problem}")
    print("Targets:", json.dumps(report["targets"]))
    print(f"JSON: {args.json}")
    return 0 if all(s["correct"] for s in report["scales"]) else 1


if __name__ == "__main__":
    sys.exit(main())
