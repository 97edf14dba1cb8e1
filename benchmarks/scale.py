"""One scale (`CxT[:R[/W]]`): two refreshes against the API double, then Dagster's no-op
floor, the COPY baseline and the data's correctness, in the scale's own schema."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.baselines import check_tables, copy_baseline, write_postgres_instance
from benchmarks.harness import (
    Checkout,
    Harness,
    api_phase_s,
    drop_database,
    drop_schema,
    loadavg,
    measured,
    new_runs,
    open_instance,
    run_times,
)
from benchmarks.passes import refresh_pass
from benchmarks.synthetic import synthetic_data
from test_support.api_double import FootballApiDouble

API_KEY = "benchmark-key"
# The three tables load in one step (one transaction); the report is a step of its own.
WAREHOUSE_STEPS = ("warehouse_tables", "summary_csv")


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
        label = f"{scale.label} {code.label}"
        cold, rerun = [
            refresh_pass(
                name,
                label,
                code=code,
                double=double,
                env=env,
                home=home,
                workdir=workdir,
                floor=floor,
                wall_offset=wall_offset,
                timeout=timeout,
                echo=echo,
            )
            for name in ("cold", "rerun")
        ]
    echo(f"[{scale.label} {code.label}] Dagster's fixed cost, COPY baseline, correctness ...")
    steps = ",".join(f"{k}:{n}" for k, n in cold["warehouse_shape"].items())
    noop_run_ids = run_noop(["warehouse", "--steps", steps], code, harness, home, workdir, timeout)
    with open_instance(home) as dagster_instance:
        noop_times = run_times(dagster_instance, noop_run_ids[0])
    overhead = sum(end - start for start, end in noop_times.steps.values())
    copies = copy_baseline(database_url, schema)
    copy_s, copy_fk_s, rows = (
        float(copies["copy_s"]),
        float(copies["copy_fk_s"]),
        int(copies["rows"]),
    )
    problems = check_tables(database_url, schema, output, data)
    above = cold["warehouse_s"] - overhead
    skeleton = None if instance_db else api_skeleton_s(scale, code, harness, workdir, timeout)
    least = floor + skeleton if skeleton is not None else None
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
            # The same phase with every asset and check a no-op (Dagster alone); the API floor
            # plus it is the least this phase can take while the events follow the requests.
            "api_skeleton_s": round(skeleton, 3) if skeleton is not None else None,
            "api_over_least": round(cold["api_s"] / least, 3) if least and cold["api_s"] else None,
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


def api_skeleton_s(
    scale: Scale, code: Checkout, harness: Harness, workdir: Path, timeout: float
) -> float | None:
    """Dagster's own part of the API phase: the pipeline as no-ops, its three runs and checks,
    over as many partitions in a fresh SQLite instance, raw_competitions start to raw_teams end."""
    home = workdir / "skeleton_home"
    home.mkdir()
    args = ["whole", "--partitions", str(scale.competitions), "--runs", "3", "--checks"]
    run_noop(args, code, harness, home, workdir, timeout)
    return api_phase_s(new_runs(home, set()))


def run_noop(
    args: list[str], code: Checkout, harness: Harness, home: Path, workdir: Path, timeout: float
) -> list[str]:
    """`python -m benchmarks.noop ARGS` in the instance at `home`; the ids of its runs."""
    proc = measured(
        [sys.executable, "-m", "benchmarks.noop", *args],
        code=None,
        env=harness.env(code, DAGSTER_HOME=str(home)),
        cwd=workdir,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.failure(f"benchmarks.noop {args[0]}"))
    return list(json.loads(proc.stdout.strip().splitlines()[-1])["run_ids"])
