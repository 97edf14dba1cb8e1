"""A first refresh against Dagster's floor, in one sitting: `--cold N` of `benchmarks.run`.
Per repetition, in rotating order: the no-op floors, and per checkout a cold and an offline
refresh; reported: their walls, the cold/floor ratio and their phases (`cold_refresh_ratio`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Checkout,
    Harness,
    Process,
    drop_schema,
    event_counts,
    loadavg,
    measured,
    measured_cli,
    median,
    median_calls,
    median_phases,
    summary,
)
from benchmarks.synthetic import synthetic_data
from test_support.api_double import FootballApiDouble

API_KEY = "benchmark-key"
COMPETITIONS, TEAMS_EACH = 13, 20
LIFTED_LIMIT = 100_000  # requests per window: none of the 14 requests waits
COLD_RATIO_TARGET = 1.3
# The floors, by name: the no-op pipeline's arguments (`benchmarks.noop whole ...`). "3 runs,
# checks" is refresh's whole Dagster skeleton, every step a no-op; "2 runs, checks" the least a
# refresh keeping its checks could reach with the range and the warehouse in one run.
FLOORS = {
    "floor": [],
    "floor, 3 runs": ["--runs", "3"],
    "floor, 3 runs, checks": ["--runs", "3", "--checks"],
    "floor, 2 runs, checks": ["--runs", "2", "--checks"],
}


def cold_refresh_ratio(
    codes: Sequence[Checkout],
    *,
    repetitions: int,
    database_url: str,
    harness: Harness,
    workdir: Path,
    timeout: float = 600.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Each repetition runs, in an order that rotates from one repetition to the next so that a
    change in the machine's load hits every kind alike:

    - the floors (FLOORS): `python -m benchmarks.noop whole` (the pipeline's assets as no-ops,
      the warehouse step with its five tables, 13 dynamic partitions, two in-process runs) in a
      fresh process with a fresh SQLite instance; the same in three runs (`--runs 3`, the range
      and the warehouse apart, as `refresh` runs them today), which prices the third run; and
      the three runs with the pipeline's checks as no-ops, refresh's whole Dagster skeleton;
      and the checks in two runs, the least a refresh that keeps its checks could take;
    - per checkout, a cold `football-assets refresh`: a fresh process, a fresh instance, a fresh
      schema, the free tier's shape (13 competitions, 20 teams each) served by the loopback API
      double with the request limit lifted, so no request waits;
    - per checkout, the offline refresh: the same, from the bundled snapshot (no API key).

    Reported: each one's wall time (median, min, max, samples), the ratio of the medians of the
    cold refresh and the floor, and, from a profile of every process (`benchmarks.phases`), the
    median seconds per phase of each and the events its runs wrote (first repetition), so the
    time above the floor has a place."""
    import sys

    data = synthetic_data(COMPETITIONS, TEAMS_EACH)
    kinds: list[tuple[str, Checkout | None]] = [(kind, None) for kind in FLOORS]
    kinds += [("cold", code) for code in codes]
    kinds += [("offline", code) for code in codes]
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    reports: dict[str, list[dict[str, Any]]] = {}
    loads: list[float] = []
    events: dict[str, dict[str, int]] = {}  # per kind, of its first repetition
    with FootballApiDouble(data, api_key=API_KEY, limit=LIFTED_LIMIT, window_seconds=2.0) as double:
        for rep in range(repetitions):
            shift = rep % len(kinds)
            for index, (kind, code) in enumerate(kinds[shift:] + kinds[:shift]):
                name = kind if code is None else f"{kind} {code.label}"
                where = workdir / f"{rep}-{index}"
                home, output, state = where / "home", where / "output", where / "state"
                home.mkdir(parents=True)
                schema = f"bench_cold_{rep}_{index}"
                settings = {
                    "DAGSTER_HOME": str(home),
                    "XDG_STATE_HOME": str(state),
                }
                load = loadavg()
                if load:
                    loads.append(load[0])
                if code is None:
                    args = [sys.executable, "-m", "benchmarks.noop", "whole", *FLOORS[kind]]
                    env = harness.env(codes[0], **settings)
                else:
                    args = measured_cli("refresh")
                    settings.update(
                        DATABASE_URL=database_url,
                        FOOTBALL_DB_SCHEMA=schema,
                        FOOTBALL_OUTPUT_DIR=str(output),
                    )
                    if kind == "cold":
                        settings.update(
                            FOOTBALL_DATA_API_KEY=API_KEY,
                            FOOTBALL_DATA_API_URL=double.base_url,
                            FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(LIFTED_LIMIT),
                            FOOTBALL_DATA_RATE_WINDOW_SECONDS="2",
                        )
                    env = harness.env(code, **settings)
                drop_schema(database_url, schema)
                try:
                    proc: Process = measured(
                        args,
                        code=code,
                        env=env,
                        cwd=where,
                        timeout=timeout,
                        profile=True,
                    )
                finally:
                    drop_schema(database_url, schema)
                if proc.returncode != 0:
                    raise RuntimeError(proc.failure(f"{name} (repetition {rep + 1})"))
                walls.setdefault(name, []).append(proc.wall_s)
                cpus.setdefault(name, []).append(proc.cpu_s)
                reports.setdefault(name, []).append(proc.report)
                if rep == 0:
                    events[name] = event_counts(home)
                echo(f"[cold {rep + 1}/{repetitions}] {name}: {proc.wall_s:.2f} s")
                shutil.rmtree(where, ignore_errors=True)
    floor = median(walls["floor"]) or 0.0

    def part(name: str) -> dict[str, Any]:
        return _part(walls[name], cpus[name], reports[name], events[name])

    result: dict[str, Any] = {
        "repetitions": repetitions,
        "shape": f"{COMPETITIONS}x{TEAMS_EACH}, request limit lifted",
        "loadavg_1min": summary(loads) if loads else None,
        "floor": part("floor"),
        # The same with the range and the warehouse in runs of their own, as refresh runs them.
        "floor_3_runs": part("floor, 3 runs"),
        # Refresh's skeleton in full: the same runs and the same checks, as no-ops.
        "floor_skeleton": part("floor, 3 runs, checks"),
        "floor_checks_2_runs": part("floor, 2 runs, checks"),
        "checkouts": {},
    }
    skeleton = median(walls["floor, 3 runs, checks"]) or 0.0
    for code in codes:
        name, off = f"cold {code.label}", f"offline {code.label}"
        cold_median = median(walls[name]) or 0.0
        result["checkouts"][code.label] = {
            "path": str(code.path),
            "cold": part(name),
            "offline": part(off),
            "cold_over_floor": round(cold_median / floor, 3) if floor else None,
            "cold_within_target": bool(floor) and cold_median / floor <= COLD_RATIO_TARGET,
            "cold_over_skeleton": round(cold_median / skeleton, 3) if skeleton else None,
        }
    return result


def _part(
    walls: list[float], cpus: list[float], reports: list[dict[str, Any]], events: dict[str, int]
) -> dict[str, Any]:
    return {
        **summary(walls),
        "cpu": summary(cpus),
        "phases_s": median_phases(reports),
        "phase_calls": median_calls(reports),
        "events": {"total": sum(events.values()), **events},
    }


def table(result: dict[str, Any]) -> str:
    """Walls and the ratio, then the phases of each (median seconds)."""
    floor = result["floor"]
    lines = [
        f"Cold refresh over the no-op floor ({result['shape']}; {result['repetitions']} "
        f"repetitions, interleaved; medians):",
        f"  floor (no-op, two runs): {floor['median_s']:.2f} s "
        f"[{floor['min_s']:.2f}-{floor['max_s']:.2f}], CPU {floor['cpu']['median_s']:.2f} s",
    ]
    three = result["floor_3_runs"]
    lines.append(
        f"  floor in three runs (as refresh runs today): {three['median_s']:.2f} s "
        f"[{three['min_s']:.2f}-{three['max_s']:.2f}]"
    )
    skeleton = result.get("floor_skeleton")
    if skeleton:
        lines.append(
            f"  floor as refresh runs it (three runs, its checks): {skeleton['median_s']:.2f} s "
            f"[{skeleton['min_s']:.2f}-{skeleton['max_s']:.2f}]"
        )
    two = result.get("floor_checks_2_runs")
    if two:
        lines.append(
            f"  floor with the checks in two runs (the least keeping the checks): "
            f"{two['median_s']:.2f} s [{two['min_s']:.2f}-{two['max_s']:.2f}] = "
            f"{two['median_s'] / floor['median_s']:.2f} x floor"
        )
    columns = [("floor", floor["phases_s"]), ("floor 3 runs", three["phases_s"])]
    if skeleton:
        columns.append(("floor skeleton", skeleton["phases_s"]))
    if two:
        columns.append(("floor checks 2 runs", two["phases_s"]))
    for label, c in result["checkouts"].items():
        lines.append(
            f"  {label}: cold {c['cold']['median_s']:.2f} s "
            f"[{c['cold']['min_s']:.2f}-{c['cold']['max_s']:.2f}] = "
            f"{c['cold_over_floor']:.2f} x floor, "
            f"{c.get('cold_over_skeleton') or 0:.2f} x skeleton "
            f"(CPU {c['cold']['cpu']['median_s']:.2f} s); "
            f"offline {c['offline']['median_s']:.2f} s "
            f"[{c['offline']['min_s']:.2f}-{c['offline']['max_s']:.2f}]"
        )
        columns.append((f"cold {label}", c["cold"]["phases_s"]))
        columns.append((f"offline {label}", c["offline"]["phases_s"]))
    events = [result["floor"]["events"]["total"], three["events"]["total"]]
    events += [skeleton["events"]["total"]] if skeleton else []
    events += [two["events"]["total"]] if two else []
    for c in result["checkouts"].values():
        events += [c["cold"]["events"]["total"], c["offline"]["events"]["total"]]
    lines.append("  events written: " + " | ".join(str(n) for n in events))
    names = sorted({n for _, p in columns for n in p})
    width = max(len(n) for n in names) if names else 10
    lines.append("  phases (s): " + " | ".join(title for title, _ in columns))
    for name in names:
        cells = " | ".join(f"{p.get(name, 0.0):.3f}" for _, p in columns)
        lines.append(f"    {name.ljust(width)} {cells}")
    return "\n".join(lines)
