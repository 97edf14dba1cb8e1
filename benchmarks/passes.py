"""One `football-assets refresh` of a scale (cold or rerun) and what its runs and the API
double's requests show: the API phase and its parts, the warehouse steps, the skip line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    API_STEPS,
    Checkout,
    all_run_ids,
    api_phase_s,
    measured,
    measured_cli,
    new_runs,
    step,
    step_seconds,
    warehouse_steps,
)
from test_support.api_double import FootballApiDouble


def refresh_pass(
    name: str,
    label: str,
    *,
    code: Checkout,
    double: FootballApiDouble,
    env: dict[str, str],
    home: Path,
    workdir: Path,
    floor: float,
    wall_offset: float,
    timeout: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """One `football-assets refresh` (cold or rerun) and what its runs and requests show."""
    before_ids, before_requests = all_run_ids(home), len(double.requests)
    echo(f"[{label}] refresh ({name}) ...")
    # `football-assets refresh` itself, reporting its own peak memory (measured_cli).
    proc = measured(measured_cli("refresh"), code=code, env=env, cwd=workdir, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.failure(f"{label} {name} refresh"))
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
    return {
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
