"""What every measurement shares: the checkout it measures, its processes, the machine's load.

Measured processes import `benchmarks` from here and `football_assets` from the `Checkout`."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine.url import make_url

from benchmarks.dagster_runs import (  # noqa: F401  (re-exported: the measurements use them)
    API_STEPS,
    RunTimes,
    all_run_ids,
    api_phase_s,
    event_counts,
    new_runs,
    open_instance,
    run_times,
    step,
    step_seconds,
    warehouse_steps,
)

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
STARTUP = "interpreter start-up"
EXIT = "exit (after the last line)"


# ---- the code measured ----------------------------------------------------------------------


def _git(path: Path, *args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=path, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@dataclass(frozen=True)
class Checkout:
    """A checkout of the project whose `football_assets` the measured processes import."""

    path: Path
    label: str  # its commit, `-dirty` when the work tree differs from it

    @classmethod
    def at(cls, path: Path | str) -> Checkout:
        root = Path(path).resolve()
        if not (root / "football_assets" / "__init__.py").is_file():
            raise ValueError(f"{root} holds no football_assets package; pass a project checkout")
        label = _git(root, "describe", "--always", "--dirty") or root.name
        return cls(root, label)


@dataclass
class Harness:
    """Where the measured processes look for code, given a scratch folder of the run's."""

    root: Path
    shim: Path = field(init=False)

    def __post_init__(self) -> None:
        self.shim = self.root / "harness-path"
        self.shim.mkdir(parents=True, exist_ok=True)
        link = self.shim / "benchmarks"
        if not link.exists():
            link.symlink_to(BENCHMARKS, target_is_directory=True)

    def env(self, code: Checkout, **settings: str) -> dict[str, str]:
        """This environment without football/Dagster settings of its own, plus `settings`,
        importing `benchmarks` from here and `football_assets` from `code`."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FOOTBALL_", "BENCHMARK_", "DAGSTER_"))
            and k not in {"DATABASE_URL", "PYTHONPATH", "XDG_STATE_HOME"}
        }
        env["PYTHONPATH"] = os.pathsep.join([str(self.shim), str(code.path)])
        env.update(settings)
        return env


# ---- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    returncode: int
    wall_s: float
    stdout: str
    stderr: str
    report: dict[str, Any] = field(default_factory=dict)  # what measured_cli / noop wrote
    started_at: float = 0.0  # the epoch, when it was started and when it had ended
    ended_at: float = 0.0
    cpu_s: float = 0.0  # user + system CPU of the process and the children it waited for

    def failure(self, what: str) -> str:
        said = (self.stderr.strip() or self.stdout.strip()).splitlines()[-5:]
        return f"{what} failed (exit {self.returncode}): " + " | ".join(said)


def run_process(args: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float) -> Process:
    """Run to completion (killed after `timeout`), output captured in files, not pipes."""
    cwd.mkdir(parents=True, exist_ok=True)
    out_path, err_path = cwd / ".bench.stdout", cwd / ".bench.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started_at = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(list(args), cwd=cwd, env=env, stdout=out, stderr=err)
        try:
            proc.wait(timeout=timeout)
        except BaseException:  # timed out, or the benchmark itself is being stopped
            proc.kill()
            proc.wait()
            if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
                raise
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Process(
        cpu_s=cpu,
        started_at=started_at,
        ended_at=started_at + wall,
        returncode=proc.returncode,
        wall_s=wall,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
    )


def measured(
    args: Sequence[str],
    *,
    code: Checkout | None,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    profile: bool = False,
) -> Process:
    """Run a benchmark entry point that reports on itself (peak memory, where its time went,
    which football_assets it imported); with `code`, fail unless it was that checkout's."""
    report_file = cwd / ".bench.report.json"
    report_file.unlink(missing_ok=True)
    env = {**env, "BENCHMARK_REPORT": str(report_file)}
    if profile:
        env["BENCHMARK_PHASES"] = "1"
    proc = run_process(args, env=env, cwd=cwd, timeout=timeout)
    if report_file.exists():
        proc.report = json.loads(report_file.read_text(encoding="utf-8"))
        phases = proc.report.get("phases")
        if phases:  # the rest of the wall time: starting the interpreter, and exiting
            start = max(0.0, phases["installed_at"] - proc.started_at)
            phases["seconds"][STARTUP] = round(start, 4)
            phases["seconds"][EXIT] = round(max(0.0, proc.ended_at - phases["reported_at"]), 4)
    imported = proc.report.get("football_assets")
    if code is not None and proc.returncode == 0 and not _within(imported, code.path):
        raise RuntimeError(
            f"measured {imported or 'no football_assets'} instead of {code.path}: "
            "is that checkout first on PYTHONPATH?"
        )
    return proc


def _within(file: str | None, folder: Path) -> bool:
    return bool(file) and Path(str(file)).resolve().is_relative_to(folder)


def measured_cli(*args: str) -> list[str]:
    """`football-assets ARGS`, reporting on itself (benchmarks/measured_cli.py)."""
    return [sys.executable, "-m", "benchmarks.measured_cli", *args]


# ---- machine load ---------------------------------------------------------------------------


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return []


def wait_for_quiet(
    threshold: float | None,
    *,
    hold_s: float = 30.0,
    timeout_s: float = 1800.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Wait until the 1-minute load average stayed below `threshold` for `hold_s` (None: do
    not wait); give up after `timeout_s` and say so. Returns what was seen, for the report."""
    started = time.monotonic()
    if threshold is None:
        return {"waited_s": 0.0, "loadavg": loadavg(), "quiet": None}
    quiet_since: float | None = None
    announced = False
    while True:
        now = time.monotonic()
        load = loadavg()
        if load and load[0] < threshold:
            quiet_since = quiet_since if quiet_since is not None else now
            if now - quiet_since >= hold_s:
                return {"waited_s": round(now - started, 1), "loadavg": load, "quiet": True}
        else:
            quiet_since = None
            if not announced:
                echo(f"waiting for the load average ({load[0] if load else '?'}) < {threshold}")
                announced = True
        if now - started > timeout_s:
            echo(f"load still {load}; measuring anyway after {timeout_s:.0f} s")
            return {"waited_s": round(now - started, 1), "loadavg": load, "quiet": False}
        time.sleep(2.0)


# ---- PostgreSQL -----------------------------------------------------------------------------


def psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def drop_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def drop_database(database_url: str, name: str) -> None:
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# ---- statistics -----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and every sample (seconds, rounded to ms)."""
    middle = median(values)
    return {
        "median_s": round(middle, 3) if middle is not None else None,
        "min_s": round(min(values), 3) if values else None,
        "max_s": round(max(values), 3) if values else None,
        "samples_s": [round(v, 3) for v in values],
    }


def median_calls(reports: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per phase, the median number of calls of its functions (see benchmarks.phases)."""
    profiles = [r["phases"]["calls"] for r in reports if r.get("phases")]
    names = sorted({name for p in profiles for name in p})
    return {name: median([p.get(name, 0) for p in profiles]) or 0 for name in names}


def median_phases(reports: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per phase, the median of its seconds over the processes' profiles (0 when absent)."""
    profiles = [r["phases"]["seconds"] for r in reports if r.get("phases")]
    names = sorted({name for p in profiles for name in p})
    result = {}
    for name in names:
        middle = median([p.get(name, 0.0) for p in profiles])
        result[name] = round(middle or 0.0, 3)
    return result
