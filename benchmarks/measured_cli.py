"""`football-assets` exactly as users run it, reporting its own peak memory at exit.

`python -m benchmarks.measured_cli refresh` runs football_assets.cli as __main__ (what the
`football-assets` script calls) and, at exit, writes this process's peak resident set in KiB
to $BENCHMARK_PEAK_FILE. Measured here because neither wait4 nor RUSAGE_SELF can tell: Linux
carries ru_maxrss across fork and exec, so a child of the benchmark (which holds the synthetic
data) would report the benchmark's size. VmHWM is the high-water mark of this image alone.
"""

from __future__ import annotations

import atexit
import os
import resource
import runpy
import sys
from pathlib import Path


def peak_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # may include the parent's


def _report() -> None:
    target = os.environ.get("BENCHMARK_PEAK_FILE")
    if target:
        Path(target).write_text(str(peak_kib()))


if __name__ == "__main__":
    atexit.register(_report)
    sys.argv = ["football-assets", *sys.argv[1:]]
    runpy.run_module("football_assets.cli", run_name="__main__", alter_sys=True)
