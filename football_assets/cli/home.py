"""The Dagster instance `football-assets` records its runs in (./.dagster_home and its
dagster.yaml), set up under a lock; while a refresh runs, stderr goes to a log file there."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from football_assets.settings import DEFAULT_DAGSTER_HOME, Settings

if TYPE_CHECKING:
    import dagster as dg

LOG_FOLDER = "refresh_logs"  # not logs/: Dagster keeps its telemetry there
KEEP_LOGS = 20

DAGSTER_YAML = """\
# The Dagster instance of `football-assets` (written on its first use; yours to edit, never
# rewritten). `dagster dev` reads it too: export DAGSTER_HOME={home}

# Records of the project's loggers (API calls, budget waits, row counts) go into each run's event
# log; with FOOTBALL_LOG_FORMAT=json every run event is also one JSON object per line on stdout.
python_logs:
  python_log_level: INFO
  managed_python_loggers:
    - football_assets
  dagster_handler_config:
    handlers:
      json_stdout:
        (): football_assets.log_format.json_stdout_handler
        level: INFO

# Runs launched from the UI wait in the queue until the daemon takes them: every second, not
# Dagster's 5. (The backfill daemon's 30 s step, most of a "Materialize all", is not settable.)
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1

# A run whose process died before it started is marked failed instead of "starting" forever.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  poll_interval_seconds: 60

# Dagster collects anonymous usage statistics (https://docs.dagster.io/about/telemetry).
# To opt out, uncomment:
# telemetry:
#   enabled: false
"""


def dagster_home(config: Settings) -> Path:
    """$DAGSTER_HOME, else the project-local default `dagster dev` can be pointed at."""
    return config.dagster_home or Path(DEFAULT_DAGSTER_HOME).absolute()


def is_default(config: Settings) -> bool:
    return config.dagster_home is None


WAITING = "waiting for another football-assets command to finish setting up the Dagster instance"


def _say_on_stderr(text: str) -> None:
    print(f"football-assets: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def setting_up(home: Path, on_wait: Callable[[str], None] = _say_on_stderr) -> Iterator[None]:
    """Hold the instance's set-up lock: an flock on the folder itself, so no file is added to
    an instance the user chose. Whoever waits for it is told so through `on_wait`."""
    folder = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(f"{WAITING} in {home}")
            fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # and with it the lock


def prepare(config: Settings, on_wait: Callable[[str], None] = _say_on_stderr) -> str | None:
    """Create the instance folder; give the default instance its dagster.yaml on first use.
    Returns the one line to tell the user when the file was written."""
    home = dagster_home(config)
    home.mkdir(parents=True, exist_ok=True)
    yaml = home / "dagster.yaml"
    if not is_default(config):
        return None
    with setting_up(home, on_wait):
        if yaml.exists():
            return None
        yaml.write_text(DAGSTER_YAML.format(home=home), encoding="utf-8")
    return (
        f"wrote {yaml} (run monitoring, JSON logs); Dagster's usage telemetry is yours to "
        "decide: `telemetry: enabled: false` there opts out."
    )


def new_log_file(home: Path) -> Path:
    """A fresh file for this refresh's Dagster log lines; only the latest KEEP_LOGS are kept."""
    folder = home / LOG_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    old = sorted(folder.glob("refresh-*.log"))
    for stale in old[: max(0, len(old) - KEEP_LOGS + 1)]:
        stale.unlink(missing_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return folder / f"refresh-{stamp}-{os.getpid()}.log"


@contextlib.contextmanager
def stderr_into(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to `path` (appending): Python's sys.stderr, the stream handlers
    Dagster creates during runs, and any child process writing to it."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "a", encoding="utf-8") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def open_instance(
    home: Path, on_wait: Callable[[str], None] = _say_on_stderr
) -> dg.DagsterInstance:
    """The instance at `home` (an existing folder), its storage created under the set-up lock,
    without Dagster's notices on stderr (a DAGSTER_HOME without dagster.yaml makes it warn; the
    refresh log file keeps them when a refresh runs)."""
    import dagster as dg

    with setting_up(home, on_wait), contextlib.redirect_stderr(io.StringIO()):
        return dg.DagsterInstance.from_config(str(home))


def prints_json(instance: dg.DagsterInstance) -> bool:
    """Whether the instance's python_logs already carry the project's JSON stdout handler."""
    config = instance.get_python_log_dagster_handler_config() or {}
    handlers = config.get("handlers") or {}
    return any(
        str(h.get("()", "")).endswith("log_format.json_stdout_handler")
        for h in handlers.values()
        if isinstance(h, dict)
    )
