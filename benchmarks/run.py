"""The pipeline against its physical limits: `python -m benchmarks.run --scales 13x20,400x50`.
Orchestration: the parts to measure, in order, and the command line (`--help` says it all)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import cold as cold_module
from benchmarks import materialize as materialize_module
from benchmarks.harness import REPO, Checkout, Harness, loadavg, wait_for_quiet
from benchmarks.report import (  # noqa: F401  (re-exported: tests and scripts)
    BASELINE,
    RESULTS_DIR,
    machine,
    print_report,
    refuse_to_shrink,
    results_path,
    table,
    targets,
    write_json,
)
from benchmarks.scale import WAREHOUSE_STEPS, Scale, floor_seconds, measure_scale  # noqa: F401
from football_assets.cli.stop import Stopped, stopping
from football_assets.resources.postgres_server import (
    start_embedded_postgres,
    stop_embedded_postgres,
)

DESCRIPTION = """\
The pipeline against its physical limits: `python -m benchmarks.run --scales 13x20,400x50`.

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


def distinct(codes: list[Checkout]) -> list[Checkout]:
    """Checkouts at one commit (worktrees with experiments) are told apart by their folder."""
    labels = [c.label for c in codes]
    return [
        Checkout(c.path, f"{c.label} ({c.path.name})") if labels.count(c.label) > 1 else c
        for c in codes
    ]


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=DESCRIPTION,
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
    try:
        with stopping():
            report = _run(args, scales, codes)
    except Stopped as stopped:
        print(
            f"benchmarks.run: {stopped.line()}; only the parts finished before it were written "
            '(marked "complete": false)',
            file=sys.stderr,
        )
        return stopped.exit_code
    print_report(report)
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


if __name__ == "__main__":
    sys.exit(main())
