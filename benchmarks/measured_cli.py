"""`football-assets` exactly as users run it, reporting on itself at exit: `python -m
benchmarks.measured_cli refresh` runs the script's entry point from the checkout first on
PYTHONPATH and writes a JSON report to $BENCHMARK_REPORT (`write_report`)."""

from __future__ import annotations

import atexit
import importlib
import json
import os
import resource
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

SCRIPT = "football-assets"
DEFAULT_TARGET = "football_assets.cli:main"


def peak_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # may include the parent's


def entry_point_target() -> str:
    """What the installed `football-assets` script runs, as `module:function`."""
    found = entry_points(group="console_scripts", name=SCRIPT)
    return next(iter(found)).value if found else DEFAULT_TARGET


def write_report(profiling: bool) -> None:
    """At exit, writes to $BENCHMARK_REPORT a JSON object:

    - `peak_kib`: this process's peak resident set. Measured here because neither wait4 nor
      RUSAGE_SELF can tell: Linux carries ru_maxrss across fork and exec, so a child of the
      benchmark (which holds the synthetic data) would report the benchmark's size. VmHWM is
      the high-water mark of this image alone.
    - `football_assets`: the file the package was imported from, so the benchmark can tell that
      it measured the checkout it meant to.
    - `phases`: with BENCHMARK_PHASES=1, where the time went (`benchmarks.phases`)."""
    target = os.environ.get("BENCHMARK_REPORT")
    if not target:
        return
    report: dict[str, Any] = {"peak_kib": peak_kib()}
    package = sys.modules.get("football_assets")
    report["football_assets"] = getattr(package, "__file__", None)
    if profiling:
        from benchmarks import phases

        report["phases"] = phases.report()
    Path(target).write_text(json.dumps(report), encoding="utf-8")


def main() -> Any:
    profiling = os.environ.get("BENCHMARK_PHASES") == "1"
    if profiling:
        from benchmarks import phases

        phases.install()
    atexit.register(write_report, profiling)
    module_name, _, function = entry_point_target().partition(":")
    sys.argv = [SCRIPT, *sys.argv[1:]]
    return getattr(importlib.import_module(module_name), function)()


if __name__ == "__main__":
    sys.exit(main())
