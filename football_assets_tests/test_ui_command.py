"""`football-assets ui`: the Dagster UI on the project's instance from one command.

It prints the asset graph's URL once the webserver answers it, and Ctrl-C (in a real terminal,
tmux) or SIGTERM stops every process it started and exits 130 / 143. A port already taken or a
DAGSTER_HOME that is a file is one line saying what to do, before anything starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from football_assets.cli import ui
from football_assets.definitions import defs

CLI = [str(Path(sys.executable).with_name("football-assets"))]
START_TIMEOUT = 240.0  # dagster dev on a loaded machine: webserver, daemon, code server
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/asset-groups\?expanded=\S+")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, pg_url: str, schema: str) -> dict[str, str]:
    """A new user's shell: no DAGSTER_HOME (the project's default instance in the working
    folder), the session's PostgreSQL instead of a new embedded one, a fresh request budget."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FOOTBALL_", "DAGSTER_"))
        and name not in {"DATABASE_URL", "XDG_STATE_HOME"}
    }
    clean.update(
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    return clean


def _children() -> dict[int, int]:
    """{pid: parent pid} of every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(pid: int) -> set[int]:
    parents = _children()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those still running (a zombie waiting for its parent counts as gone)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def location_loaded(port: int) -> bool:
    body = json.dumps(
        {
            "query": "{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries"
            " { entries { name loadStatus } } } }"
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        entries = json.load(response)["data"]["locationStatusesOrError"]["entries"]
    # The project's location name, as workspace.yaml and the deployments give it.
    return [(e["name"], e["loadStatus"]) for e in entries] == [("football_assets", "LOADED")]


def wait_until(what: str, probe: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def everything_started(root: int, port: int) -> set[int]:
    """The processes under `root` once the UI is whole: webserver, daemon, code server."""
    wait_until("the code location to load", lambda: location_loaded(port), START_TIMEOUT)
    return descendants(root)


def assert_all_stopped(started: set[int]) -> None:
    deadline = time.monotonic() + 30
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive(started)
    for pid in left:  # the test fails, but leaves nothing running behind it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after the UI stopped: {sorted(left)}"


class Tmux:
    """A tmux server of the test's own (its socket in tmp_path), killed at the end."""

    def __init__(self, socket_path: Path) -> None:
        self.socket = socket_path

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-J", "-S", "-100")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    server = Tmux(tmp_path / "tmux.sock")
    try:
        yield server
    finally:
        subprocess.run(
            ["tmux", "-S", str(server.socket), "kill-server"], capture_output=True, timeout=30
        )


def test_ui_prints_the_graph_url_serves_it_and_ctrl_c_stops_all_it_started(
    tmp_path: Path, env: dict[str, str], tmux: Tmux
) -> None:
    port = _free_port()
    script = tmp_path / "ui.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    command = " ".join(shlex.quote(part) for part in [*CLI, "ui", "--port", str(port)])
    script.write_text(
        f"{exports}cd {shlex.quote(str(tmp_path))}\n{command}\necho EXIT=$?\nsleep 600\n",
        encoding="utf-8",
    )
    # bash, as a terminal runs it: it goes on after a child that handled Ctrl-C itself.
    tmux("new-session", "-d", "-x", "250", "-y", "50", f"bash {shlex.quote(str(script))}")
    shell = int(tmux("display-message", "-p", "#{pane_pid}").strip())

    wait_until("the URL", lambda: URL.search(tmux.screen()), START_TIMEOUT)
    printed = URL.search(tmux.screen())
    assert printed is not None and int(printed[1]) == port
    url = printed[0]
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert b"Dagster" in response.read()
    started = everything_started(shell, port)
    assert len(started) >= 4, started  # football-assets, dagster dev, webserver, daemon, ...
    # The instance is the one refresh uses: the project's default, with its dagster.yaml.
    assert (tmp_path / ".dagster_home" / "dagster.yaml").is_file()

    tmux("send-keys", "C-c")
    wait_until("the exit status", lambda: "EXIT=" in tmux.screen(), 60)
    screen = tmux.screen()
    assert "EXIT=130" in screen, screen
    assert "stopping the UI (SIGINT)" in screen
    assert "Traceback" not in screen
    assert_all_stopped(started)


def test_sigterm_stops_all_it_started_and_exits_143(tmp_path: Path, env: dict[str, str]) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [*CLI, "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if URL.search(line):
                break
        assert any(URL.search(line) for line in lines), lines
        started = everything_started(process.pid, port) | {process.pid}
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == 143, (out, err)
    assert "stopping the UI (SIGTERM)" in out
    assert_all_stopped(started)


def test_a_killed_ui_leaves_no_server_behind(tmp_path: Path, env: dict[str, str]) -> None:
    """SIGKILL cannot be handled: dagster dev learns of it from the kernel (Linux) and stops."""
    port = _free_port()
    process = subprocess.Popen(
        [*CLI, "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if URL.search(line):
                break
        started = everything_started(process.pid, port)
        process.kill()
        process.wait(timeout=30)
        assert_all_stopped(started)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def run_ui(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ui", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_taken_port_is_one_line_naming_it_and_the_option(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_ui(tmp_path, env, "--port", str(port))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port} " in lines[0] and "--port" in lines[0]
    assert not (tmp_path / ".dagster_home" / "ui.log").exists()  # nothing was started


def test_dagster_home_that_is_a_file_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder", encoding="utf-8")
    result = run_ui(tmp_path, {**env, "DAGSTER_HOME": str(home)}, "--port", str(_free_port()))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DAGSTER_HOME" in lines[0] and "is a file" in lines[0] and "folder" in lines[0]
    assert result.stdout == ""


def test_the_url_opens_every_group_of_the_definitions() -> None:
    groups = {spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert set(ui.GROUPS) == groups
    url = ui.graph_url("127.0.0.1", 3000)
    assert url.startswith("http://127.0.0.1:3000/asset-groups?expanded=")
    assert url.split("=", 1)[1].split(",") == [f"global@global:{g}" for g in ui.GROUPS]
