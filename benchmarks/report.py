"""Where a benchmark run's results go (JSON), its targets, and the tables it prints."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg

from benchmarks import cold as cold_module
from benchmarks import materialize as materialize_module
from benchmarks.harness import REPO, Checkout, psycopg_url
from benchmarks.scale import Scale

RESULTS_DIR = REPO / "benchmarks" / "results"
BASELINE = RESULTS_DIR / "latest.json"

# Targets of issue 6, checked against whichever scales ran.
API_RATIO_TARGET = 1.15
WAREHOUSE_400_TARGET_S = 2.0
WAREHOUSE_COPY_FACTOR = 3.0
PEAK_MEMORY_TARGET_MIB = 1024


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


def machine(database_url: str) -> dict[str, Any]:
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
    ("skeleton s", "api_skeleton_s", "{:.1f}"),
    ("API/(floor+skeleton)", "api_over_least", "{:.2f}"),
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


def print_report(report: dict[str, Any]) -> None:
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
