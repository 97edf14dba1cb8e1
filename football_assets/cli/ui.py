"""`football-assets ui`: Dagster's UI (webserver and daemon, i.e. `dagster dev`) on the instance
`refresh` uses, in the foreground; Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType

import football_assets.cli.home as instance_home
from football_assets.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
# The asset groups (policies.py), left to right; a test checks they are the definitions'. Named
# here so printing the URL does not wait for Dagster's import.
GROUPS = ("ingestion", "warehouse", "reporting")
LOG_FILE = "ui.log"
# A loaded machine takes 20-40 s to bring up the webserver, the daemon and the code server.
START_TIMEOUT = 300.0
ANSI = r"\x1b\[[0-9;]*m"  # Dagster colours its log lines
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_TIMEOUT = 20.0  # dagster dev waits for its webserver and daemon; then the group is killed


class UiError(Exception):
    """The UI could not start; str() is one line saying why and what to do."""


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def graph_url(host: str, port: int) -> str:
    """The asset graph with every group open: `expanded` is the UI's own query parameter."""
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host
    expanded = ",".join(f"global@global:{group}" for group in GROUPS)
    return f"http://{shown}:{port}/asset-groups?expanded={expanded}"


def check_port(host: str, port: int) -> None:
    """Raise UiError when something already listens on host:port (Dagster would only say so
    in a traceback, after its daemon had started)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the webserver binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UiError(
                    f"port {port} on {host} is taken (another Dagster UI?); stop it, or choose "
                    f"another port: football-assets ui --port {port + 1}"
                ) from None
            raise UiError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host") from exc


# The code location's name is the one workspace.yaml, `dg dev` and the deployments give it:
# sensor and schedule states are kept by it, so every way of opening the UI shares them. The
# working directory is the user's, where relative settings (and .env) are read, as refresh does.
WORKSPACE = """\
load_from:
  - python_module:
      module_name: football_assets.definitions
      location_name: football_assets
      working_directory: {cwd}
"""


def dagster_dev_command(workspace: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(workspace),
        "-h",
        host,
        "-p",
        str(port),
    ]


def _die_with_parent() -> None:
    """In the child, before dagster dev starts (Linux): SIGTERM when football-assets ui dies,
    even by SIGKILL, so its webserver and daemon never outlive the command."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def prepare(config: Settings) -> list[str]:
    """The instance refresh uses, and the embedded PostgreSQL when DATABASE_URL is unset, so
    the first run from the UI does not wait for either. Returns the lines to tell the user."""
    lines = []
    wrote = instance_home.prepare(config)
    if wrote:
        lines.append(wrote)
    if config.database_url is None:
        from football_assets.resources.postgres_server import (
            EmbeddedPostgresError,
            start_embedded_postgres,
        )

        try:
            start_embedded_postgres(config.embedded_pgdata)
        except EmbeddedPostgresError as exc:
            raise UiError(str(exc)) from None
        lines.append(
            f"warehouse: the embedded PostgreSQL in {config.embedded_pgdata} (it keeps running "
            "after the UI stops, as after refresh; `football-assets db stop` stops it)"
        )
    return lines


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@contextlib.contextmanager
def _signals_raise() -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM raise _Stop in the main thread, until the caller says it is stopping:
    a second Ctrl-C must not cut the stopping short."""
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not stopping:
            raise _Stop(signum)

    def now_stopping() -> None:
        nonlocal stopping
        stopping = True

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield now_stopping
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def stop_group(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """`dagster dev` first (SIGTERM: it shuts its webserver and daemon down), then whatever is
    left of its process group (code servers, runs): SIGTERM, and SIGKILL after a grace."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.2)
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=1)


def run(
    config: Settings,
    env: Mapping[str, str],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    verbose: bool = False,
) -> int:
    """Prepare, start `dagster dev`, print the URL once it answers, wait; 130/143 on a signal."""
    home = instance_home.dagster_home(config)
    check_port(host, port)
    say = print
    say(f"football-assets: Dagster instance {home}", flush=True)
    for line in prepare(config):
        say(f"football-assets: {line}", flush=True)
    log = home / LOG_FILE
    child_env = {**env, "DAGSTER_HOME": str(home)}
    url = graph_url(host, port)
    started = time.monotonic()
    process: subprocess.Popen[bytes] | None = None
    with contextlib.ExitStack() as stack, _signals_raise() as now_stopping:
        try:
            output = None if verbose else stack.enter_context(log.open("wb"))
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="football-ui-")))
            workspace = folder / "workspace.yaml"
            workspace.write_text(
                WORKSPACE.format(cwd=json.dumps(str(Path.cwd()))), encoding="utf-8"
            )
            process = subprocess.Popen(
                dagster_dev_command(workspace, host, port),
                env=child_env,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                # Its own group: the terminal's Ctrl-C reaches this process only, which then stops
                # dagster dev in order and everything it started with it.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            where = "on this terminal" if verbose else f"in {log}"
            say(f"football-assets: starting Dagster's webserver and daemon (its log {where})")
            while not _answers(url.split("/asset-groups")[0] + "/server_info"):
                if process.poll() is not None:
                    return _exited(process.returncode, log, verbose)
                if time.monotonic() - started > START_TIMEOUT:
                    raise UiError(f"the UI did not answer within {START_TIMEOUT:.0f} s; see {log}")
                time.sleep(0.5)
            say(f"football-assets: the UI is up in {time.monotonic() - started:.0f} s: {url}")
            say(
                'football-assets: "Materialize all" -> All -> "Launch backfill" runs everything; '
                "Dagster's backfill daemon moves it on every 30 s, so it shows Succeeded after "
                "about 1-2 minutes. Ctrl-C stops the UI.",
                flush=True,
            )
            code = process.wait()
            return _exited(code, log, verbose)
        except _Stop as stop:
            now_stopping()
            say(f"\nfootball-assets: stopping the UI ({signal.Signals(stop.signum).name})")
            return 128 + stop.signum
        finally:
            now_stopping()
            if process is not None:
                stop_group(process)


def _exited(code: int, log: Path, verbose: bool) -> int:
    """dagster dev ended by itself: a crash, or someone stopped it."""
    if code == 0:
        return 0
    where = "above" if verbose else f"in {log}"
    tail = ""
    if not verbose and log.exists():
        lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln]
        tail = f": {re.sub(ANSI, '', lines[-1]).strip()}" if lines else ""
    raise UiError(f"dagster dev exited with code {code}{tail} (its log is {where})")
