"""The pipeline against its physical limits: `python -m benchmarks.run --scales 13x20,400x50`.

For each scale (`CxT`: competitions x teams each; `CxT:R` or `CxT:R/W` to set the requests per
window and the window): synthetic answers served by the loopback API double at R requests per
W seconds, then `football-assets refresh` in a subprocess (the command users run) against a real
PostgreSQL, twice: a cold run and a rerun on unchanged data. Timings come from the Dagster
instance's own step events; the floors are measured in the same run:

- API phase: raw_competitions start -> raw_teams success, against floor(N/R) * W, the least
  time N+1 requests at R per window can take; split into the requests (first to last) and
  Dagster's bookkeeping around them;
- warehouse phase: the steps after the API that materialize assets, against the same steps as
  no-ops (Dagster's fixed cost) and a COPY of the very rows the tables ended up holding, both
  into plain tables and into the real ones with their foreign keys;
- peak memory of the refresh process (its own VmHWM, reported at exit by measured_cli).

`--cold N`: a first refresh against the no-op floor of the whole pipeline, N interleaved
repetitions (`benchmarks.cold`). `--materialize N`: `dagster asset materialize` and a run
launched through the webserver, default run config against the in-process executor
(`benchmarks.materialize`). `--code PATH` (repeatable) measures that checkout instead of this
one, e.g. a `git worktree` of an older commit: before and after in one sitting, interleaved.
`--quiet-load 0.5` waits before each part until the machine's load average stays below 0.5.

Prints tables and writes everything as JSON to a new file, benchmarks/results/<UTC time>.json;
`--update-baseline` rewrites the committed benchmarks/results/latest.json instead (refused when
the run would drop scales the baseline holds), `--json PATH` writes exactly there.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql
from sqlalchemy.engine.url import make_url

from benchmarks import cold as cold_module
from benchmarks import materialize as materialize_module
from benchmarks.harness import (
    API_STEPS,
    REPO,
    Checkout,
    Harness,
    all_run_ids,
    api_phase_s,
    drop_database,
    drop_schema,
    loadavg,
    measured,
    measured_cli,
    new_runs,
    open_instance,
    psycopg_url,
    run_times,
    step,
    step_seconds,
    wait_for_quiet,
    warehouse_steps,
)
from benchmarks.synthetic import expected_tables, synthetic_data
from football_assets.resources.postgres_server import (
    start_embedded_postgres,
    stop_embedded_postgres,
)
from test_support.api_double import ApiData, FootballApiDouble

RESULTS_DIR = REPO / "benchmarks" / "results"
BASELINE = RESULTS_DIR / "latest.json"
API_KEY = "benchmark-key"
WAREHOUSE_TABLES = ("dim_competitions", "dim_teams", "fact_competitions")
# The three tables load in one step (one transaction); the report is a step of its own.
WAREHOUSE_STEPS = ("warehouse_tables", "summary_csv")

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


def distinct(codes: list[Checkout]) -> list[Checkout]:
    """Checkouts at one commit (worktrees with experiments) are told apart by their folder."""
    labels = [c.label for c in codes]
    return [
        Checkout(c.path, f"{c.label} ({c.path.name})") if labels.count(c.label) > 1 else c
        for c in codes
    ]


# ---- where the results go -------------------------------------------------------------------


def results_path(
    json_path: Path | None = None,
    *,
    update_baseline: bool = False,
    results_dir: Path = RESULTS_DIR,
    now: datetime | None = None,
) -> Path:
    """`--json` as given; the committed baseline only when asked; else a new file."""
    if json_path is not None:
        return json_path
    if update_baseline:
        return results_dir / BASELINE.name
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"{stamp}.json"
    suffix = 1
    while path.exists():  # two runs in one second keep both
        suffix += 1
        path = results_dir / f"{stamp}-{suffix}.json"
    return path


def scale_key(scale: dict[str, Any]) -> str:
    return f"{scale['scale']}:{scale['limit_per_window']}/{scale['window_s']:g}"


def refuse_to_shrink(baseline: Path, scales: Sequence[Scale], window: float) -> None:
    """--update-baseline must not drop scales the baseline holds (`--scales 13x20` would)."""
    if not baseline.exists():
        return
    try:
        held = {scale_key(s) for s in json.loads(baseline.read_text(encoding="utf-8"))["scales"]}
    except (OSError, ValueError, KeyError, TypeError):
        return
    asked = {f"{s.label}:{s.limit}/{(s.window or window):g}" for s in scales}
    missing = sorted(held - asked)
    if missing:
        raise SystemExit(
            f"refusing to update {baseline}: it holds {', '.join(missing)}, which this run "
            "does not measure; add them to --scales, or drop --update-baseline to write a new "
            "file"
        )


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---- PostgreSQL -----------------------------------------------------------------------------


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


# ---- one scale ------------------------------------------------------------------------------


def measure_scale(
    scale: Scale,
    *,
    code: Checkout,
    harness: Harness,
    database_url: str,
    instance: str,
    window: float,
    **options: Any,
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
            code=code,
            harness=harness,
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
    code: Checkout,
    harness: Harness,
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
        "code": code.label,
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
        "loadavg_before": loadavg(),
    }
    # Request times are the double's monotonic clock; Dagster's events carry wall-clock time.
    wall_offset = time.time() - time.monotonic()
    with FootballApiDouble(
        data, api_key=API_KEY, limit=scale.limit, window_seconds=window
    ) as double:
        env = harness.env(
            code,
            FOOTBALL_DATA_API_KEY=API_KEY,
            FOOTBALL_DATA_API_URL=double.base_url,
            FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(scale.limit),
            FOOTBALL_DATA_RATE_WINDOW_SECONDS=str(window),
            DATABASE_URL=database_url,
            FOOTBALL_DB_SCHEMA=schema,
            DAGSTER_HOME=str(home),
            FOOTBALL_OUTPUT_DIR=str(output),
            # The request budget of this scale's own (one user's), not the machine user's.
            XDG_STATE_HOME=str(workdir / "state"),
        )
        passes: list[dict[str, Any]] = []
        for name in ("cold", "rerun"):
            before_ids, before_requests = all_run_ids(home), len(double.requests)
            echo(f"[{scale.label} {code.label}] refresh ({name}) ...")
            # `football-assets refresh` itself, reporting its own peak memory (measured_cli).
            proc = measured(
                measured_cli("refresh"), code=code, env=env, cwd=workdir, timeout=timeout
            )
            if proc.returncode != 0:
                raise RuntimeError(proc.failure(f"{scale.label} {name} refresh"))
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
            shape = warehouse_steps(runs)
            warehouse = step_seconds(runs, list(shape))
            skip_lines = [ln for ln in proc.stdout.splitlines() if "skipped" in ln.lower()]
            passes.append(
                {
                    "wall_s": round(proc.wall_s, 3),
                    "peak_rss_mib": round(int(proc.report["peak_kib"]) / 1024, 1),
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
                    # step -> how many assets it materialized: the no-op floor's shape
                    "warehouse_shape": shape,
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
    echo(f"[{scale.label} {code.label}] Dagster's fixed cost, COPY baseline, correctness ...")
    steps = ",".join(f"{k}:{n}" for k, n in cold["warehouse_shape"].items())
    noop = measured(
        [sys.executable, "-m", "benchmarks.noop", "warehouse", "--steps", steps],
        code=None,
        env=harness.env(code, DAGSTER_HOME=str(home)),
        cwd=workdir,
        timeout=timeout,
    )
    if noop.returncode != 0:
        raise RuntimeError(noop.failure("benchmarks.noop warehouse"))
    noop_result = json.loads(noop.stdout.strip().splitlines()[-1])
    with open_instance(home) as dagster_instance:
        noop_times = run_times(dagster_instance, noop_result["run_ids"][0])
    overhead = sum(end - start for start, end in noop_times.steps.values())
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
            "loadavg_after": loadavg(),
        }
    )
    return result


# ---- report ---------------------------------------------------------------------------------


def machine(database_url: str) -> dict[str, Any]:
    import os

    meminfo = Path("/proc/meminfo")
    total_kib = 0
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                total_kib = int(line.split()[1])
    with psycopg.connect(psycopg_url(database_url)) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    return {
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": round(total_kib / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": server[0] if server else None,
        "dagster": dg.__version__,
        "benchmark_commit": Checkout.at(REPO).label,
    }


def targets(
    scales: list[dict[str, Any]],
    cold: dict[str, Any] | None = None,
    materialize: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The targets of issues 6 and 10, evaluated on what ran (None: it did not run)."""
    labels = {s["code"] for s in scales}
    by_label = {(s["code"], s["scale"]): s for s in scales}
    result: dict[str, Any] = {}
    for label in sorted(labels):
        big, mid = by_label.get((label, "4000x50")), by_label.get((label, "400x50"))
        linear = None
        if big and mid and mid["warehouse_us_per_row"]:
            linear = round(big["warehouse_us_per_row"] / mid["warehouse_us_per_row"], 2)
        mine = [s for s in scales if s["code"] == label]
        checks = {
            "api_within_1.15x_floor": {
                f"{s['scale']} at {s['limit_per_window']}/{s['window_s']:g}s": s["api_ratio"]
                is not None
                and s["api_ratio"] <= API_RATIO_TARGET
                for s in mine
            },
            "zero_refused": all(s["refused"] == 0 for s in mine),
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
            "peak_4000x50_under_1GiB": (
                big["peak_rss_mib"] < PEAK_MEMORY_TARGET_MIB if big else None
            ),
            "rerun_rebuilds_nothing": all(s["rerun_skipped"] for s in mine),
            "data_correct": all(s["correct"] for s in mine),
        }
        result[label] = checks
    for kind, part, key in (
        ("cold_refresh_within_1.3x_floor", cold, "cold_within_target"),
        ("default_materialize_within_1.5x_in_process", materialize, "within_target"),
    ):
        for label, c in ((part or {}).get("checkouts") or {}).items():
            result.setdefault(label, {})[kind] = c.get(key)
    if len(result) == 1:  # one checkout: the targets themselves, as before
        return next(iter(result.values()))
    return result


COLUMNS = [
    ("scale", "scale", "{}"),
    ("code", "code", "{}"),
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
    codes: Sequence[Checkout] | None = None,
    window: float = 2.0,
    squad: int = 0,
    instance: str = "sqlite",
    cold_repetitions: int = 0,
    materialize_repetitions: int = 0,
    quiet_load: float | None = None,
    quiet_timeout: float = 1800.0,
    database_url: str | None = None,
    workdir: Path | None = None,
    json_path: Path | None = None,
    update_baseline: bool = False,
    results_dir: Path = RESULTS_DIR,
    timeout: float = 3600.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every part; stop every server this started, also on failure. The JSON is
    rewritten after each part (`"complete": false` until the last), so a failure late in a long
    run keeps what was measured."""
    codes = distinct(list(codes or [Checkout.at(REPO)]))
    if update_baseline and json_path is None:
        refuse_to_shrink(results_dir / BASELINE.name, scales, window)
    path = results_path(json_path, update_baseline=update_baseline, results_dir=results_dir)
    root = Path(tempfile.mkdtemp(prefix="football-bench-", dir=workdir))
    harness = Harness(root)
    pgdata = root / "pgdata"
    started_pg = database_url is None
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:]),
        "entry_point": "football-assets refresh (via python -m benchmarks.measured_cli refresh)",
        "checkouts": [{"label": c.label, "path": str(c.path)} for c in codes],
        "complete": False,
        "scales": [],
    }
    waits: list[dict[str, Any]] = []

    def quiet(part: str) -> None:
        seen = wait_for_quiet(quiet_load, timeout_s=quiet_timeout, echo=echo)
        waits.append({"before": part, **seen})

    try:
        url = database_url or start_embedded_postgres(pgdata)
        report["machine"] = machine(url)
        report["machine"]["commit"] = codes[-1].label
        report["load"] = waits
        if cold_repetitions:
            quiet("cold refresh ratio")
            report["cold_refresh"] = cold_module.cold_refresh_ratio(
                codes,
                repetitions=cold_repetitions,
                database_url=url,
                harness=harness,
                workdir=root / "cold",
                echo=echo,
            )
            write_json(path, report)
        if materialize_repetitions:
            quiet("materialize paths")
            report["materialize"] = materialize_module.materialize_paths(
                codes,
                repetitions=materialize_repetitions,
                database_url=url,
                harness=harness,
                workdir=root / "materialize",
                echo=echo,
            )
            write_json(path, report)
        for scale in scales:
            for number, code in enumerate(codes):
                quiet(f"{scale.label} {code.label}")
                slug = scale.slug(scale.window or window)
                report["scales"].append(
                    measure_scale(
                        scale,
                        code=code,
                        harness=harness,
                        window=window,
                        database_url=url,
                        workdir=root / f"{slug}-{number}",
                        squad=squad,
                        instance=instance,
                        timeout=timeout,
                        echo=echo,
                    )
                )
                write_json(path, report)
        report["targets"] = targets(
            report["scales"], report.get("cold_refresh"), report.get("materialize")
        )
        report["complete"] = True
        report["loadavg_end"] = loadavg()
    finally:
        if started_pg:
            stop_embedded_postgres(pgdata)
        shutil.rmtree(root, ignore_errors=True)
        if report["scales"] or report.get("cold_refresh") or report.get("materialize"):
            write_json(path, report)
    report["json_path"] = str(path)
    return report


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scales",
        default="13x20,400x50,4000x50",
        help="comma-separated CxT[:R[/W]] (competitions x teams each, R requests per W s); "
        "'' for none",
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
    parser.add_argument(
        "--code",
        action="append",
        type=Path,
        help="a checkout of the project to measure instead of this one (repeat to compare, "
        "e.g. a `git worktree` of an older commit, then this one)",
    )
    parser.add_argument(
        "--cold", type=int, default=0, metavar="N", help="cold refresh vs its floor, N times"
    )
    parser.add_argument(
        "--materialize",
        type=int,
        default=0,
        metavar="N",
        help="dagster asset materialize and a GraphQL launch, default vs in-process, N times",
    )
    parser.add_argument(
        "--quiet-load",
        type=float,
        metavar="LOAD",
        help="before each part, wait until the 1-minute load average stays below LOAD for 30 s",
    )
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=1800.0,
        metavar="S",
        help="measure anyway after waiting S seconds for --quiet-load (default 1800)",
    )
    parser.add_argument("--database-url", help="a PostgreSQL to use instead of an embedded one")
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help=f"rewrite {BASELINE.relative_to(REPO)} (the committed baseline) with this run",
    )
    parser.add_argument("--json", type=Path, help="write the JSON exactly here")
    args = parser.parse_args(argv)
    scales = [Scale.parse(s) for s in args.scales.split(",") if s.strip()]
    try:
        codes = [Checkout.at(p) for p in args.code] if args.code else None
    except ValueError as exc:
        parser.error(str(exc))
    if args.update_baseline and codes and len(codes) > 1:
        parser.error("--update-baseline takes one checkout: the baseline is one commit's")
    # Stopped by a signal (also when started in the background, where SIGINT is ignored), the
    # run still stops the PostgreSQL it started and removes its scratch folder.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        report = _run(args, scales, codes)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print(report)
    return 0 if all(s["correct"] for s in report["scales"]) else 1


def _run(
    args: argparse.Namespace, scales: list[Scale], codes: list[Checkout] | None
) -> dict[str, Any]:
    return run_benchmark(
        scales,
        codes=codes,
        window=args.window,
        squad=args.squad,
        instance=args.instance,
        cold_repetitions=args.cold,
        materialize_repetitions=args.materialize,
        quiet_load=args.quiet_load,
        quiet_timeout=args.quiet_timeout,
        database_url=args.database_url,
        json_path=args.json,
        update_baseline=args.update_baseline,
    )


def _print(report: dict[str, Any]) -> None:
    m = report["machine"]
    print()
    print(
        f"{m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, PostgreSQL "
        f"{m['postgresql']}, Dagster {m['dagster']}; measured: "
        + ", ".join(f"{c['label']} ({c['path']})" for c in report["checkouts"])
    )
    print(
        "Load average (1 min) before each part: "
        + ", ".join(
            f"{w['before']}: {w['loadavg'][0] if w['loadavg'] else '?'}" for w in report["load"]
        )
    )
    if report["scales"]:
        print(table(report["scales"]))
    for s in report["scales"]:
        message = s["passes"]["rerun"]["skip_message"]
        if message:
            print(f"{s['scale']} {s['code']} rerun: {message}")
        for problem in s["problems"]:
            print(f"{s['scale']} {s['code']} WRONG DATA: {problem}")
    if "cold_refresh" in report:
        print(cold_module.table(report["cold_refresh"]))
    if "materialize" in report:
        print(materialize_module.table(report["materialize"]))
    print("Targets:", json.dumps(report["targets"]))
    print(f"JSON: {report['json_path']}")


if __name__ == "__main__":
    sys.exit(main())
