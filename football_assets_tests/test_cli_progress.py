"""What `football-assets refresh` shows while it runs: in a real terminal (tmux), and piped.

The API double allows 3 requests per 2 s, so a refresh of 13 competitions really waits, several
times, for the request budget: the display must say so, with a countdown, as it happens.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from football_assets.cli.display import REASONS, RefreshState
from football_assets.progress import Phase, RequestForecast
from football_assets.refresh import PID_TAG
from football_assets_tests.conftest import TEST_KEY
from football_assets_tests.test_kill import while_fetching_teams
from test_support.api_double import ApiData, FootballApiDouble
from test_support.refresh_process import CLI, live_env_under

LIMIT, WINDOW = 3, 2.0
HIDE_CURSOR, SHOW_CURSOR = b"\x1b[?25l", b"\x1b[?25h"
# The reasons a wait is shown with (`{why}` is the budget the client was configured with).
WAIT_REASONS = [r.replace("{why}", f"{LIMIT} requests per {WINDOW:g} s") for r in REASONS.values()]
WAITING = re.compile(
    r"waiting\s+(?P<left>\d+\.\d) s before teams (?P<n>\d+)/13 "
    r"\(GET (?P<endpoint>/competitions/\d+/teams)\): (?P<reason>.+?) *$",
    re.MULTILINE,
)


@pytest.fixture
def slow_api() -> Iterator[FootballApiDouble]:
    with FootballApiDouble(
        ApiData.from_sample_dir(), api_key=TEST_KEY, limit=LIMIT, window_seconds=WINDOW
    ) as double:
        yield double


@pytest.fixture
def env(tmp_path: Path, slow_api: FootballApiDouble, pg_url: str, schema: str) -> dict[str, str]:
    return live_env_under(
        slow_api.base_url,
        TEST_KEY,
        limit=LIMIT,
        window_seconds=WINDOW,
        pg_url=pg_url,
        schema=schema,
        home=tmp_path,
        LANG="C.UTF-8",
    )


class Tmux:
    """A tmux server of the test's own (its socket in tmp_path), killed at the end."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-J")


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


def test_a_terminal_shows_phase_count_wait_reason_countdown_and_eta(
    tmp_path: Path, env: dict[str, str], tmux: Tmux
) -> None:
    script = tmp_path / "refresh.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    command = " ".join(shlex.quote(part) for part in [*CLI, "refresh"])
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    script.write_text(
        f"{exports}cd {shlex.quote(str(tmp_path))}\n{command}\necho EXIT=$?\nsleep 600\n",
        encoding="utf-8",
    )
    tmux("new-session", "-d", "-x", "160", "-y", "40", f"sh {shlex.quote(str(script))}")

    # Catch the display during a wait, twice, to see the countdown move.
    frames: list[tuple[re.Match[str], str]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(frames) < 2:
        screen = tmux.screen()
        found = WAITING.search(screen)
        if found and (not frames or found["endpoint"] == frames[0][0]["endpoint"]):
            frames.append((found, screen))
            time.sleep(0.3)
        elif found:
            frames = [(found, screen)]  # a new wait began: start over on this one
        elif "EXIT=" in screen:
            break
        else:
            time.sleep(0.05)
    assert len(frames) == 2, tmux.screen()
    (first, screen), (second, _) = frames
    assert first["reason"] in WAIT_REASONS, first["reason"]
    assert float(second["left"]) < float(first["left"]), "the countdown did not move"
    assert "▶ teams" in screen and "✔ competitions 13 listed" in screen
    shown = re.search(r"▶ teams\s+(\d+)/13", screen)
    assert shown and int(first["n"]) == int(shown[1]) + 1  # the wait is for the next one
    eta = re.search(r"ETA (\d+):(\d\d)\s+(\d+) requests? left at 3 requests per 2 s", screen)
    assert eta and int(eta[3]) == 13 - int(shown[1])
    assert "· warehouse" in screen and "· summary" in screen

    while time.monotonic() < deadline and "EXIT=" not in tmux.screen():
        time.sleep(0.2)
    final = tmux.screen()
    assert "EXIT=0" in final, final
    assert re.search(r"✔ teams\s+13/13", final) and "✔ summary" in final
    assert (
        "Rows in schema" in final and "dim_teams=226" in final and "fact_competitions=264" in final
    )
    assert "See it in the UI: football-assets ui" in final
    assert " - dagster - " not in final  # Dagster's log lines went to the log file


def test_piped_output_is_plain_lines_with_n_of_n(
    tmp_path: Path, env: dict[str, str], slow_api: FootballApiDouble
) -> None:
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    # Bytes, as written: text mode would turn a carriage return into a newline.
    result = subprocess.run(
        [*CLI, "refresh"], cwd=tmp_path, env=env, capture_output=True, timeout=180
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    raw = result.stdout
    assert b"\x1b" not in raw and b"\r" not in raw  # no control characters at all
    out = raw.decode("utf-8")
    lines = out.splitlines()
    assert "competitions 1/1 done: 13 competitions listed" in lines
    done = [line for line in lines if re.fullmatch(r"teams \d+/13 done: .+", line)]
    assert [int(line.split()[1].split("/")[0]) for line in done] == list(range(1, 14))
    assert "teams 12/13 done: Premier League: 20 teams" in done[11]
    assert re.search(r"\(ETA \d+:\d\d\)$", done[0])
    waits = [line for line in lines if line.startswith("wait ")]
    assert waits, out  # 14 requests at 3 per 2 s: several waits
    for line in waits:
        found = re.fullmatch(
            r"wait (\d+\.\d) s before teams (\d+)/13 \(GET /competitions/\d+/teams\): (.+)", line
        )
        assert found and found[3] in WAIT_REASONS, line
    assert lines.index("warehouse: loading dim_competitions, dim_teams, fact_competitions") < (
        lines.index("summary: writing summary.csv")
    )
    assert lines[-1].startswith("See it in the UI: football-assets ui")
    assert slow_api.refused_count() == 0


def test_the_eta_follows_the_request_budget() -> None:
    forecast = RequestForecast(limit=3, window_seconds=2.0, margin=0.1)
    for at in (0.0, 0.1, 0.2):
        forecast.request_sent(at)
    # 3 per 2.1 s: the 4th leaves when the 1st leaves the window, the 7th a window later.
    assert forecast.finish_time(1, now=0.3) == pytest.approx(2.1)
    assert forecast.finish_time(4, now=0.3) == pytest.approx(4.2)
    # A wait in progress (the server's reset) holds everything back.
    assert forecast.finish_time(1, now=0.3, not_before=5.0) == pytest.approx(5.0)
    # Offline: no budget, only the refresh's own pace (0.1 s between requests).
    offline = RequestForecast(limit=None, window_seconds=60.0)
    for at in (0.0, 0.1, 0.2):
        offline.request_sent(at)
    assert offline.finish_time(10, now=0.2) == pytest.approx(1.2)


@pytest.mark.parametrize("how", ["C-c", "SIGTERM"])
def test_a_signal_in_a_terminal_stops_with_one_line_and_gives_the_terminal_back(
    how: str, tmp_path: Path, env: dict[str, str], tmux: Tmux, slow_api: FootballApiDouble
) -> None:
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    go, raw, modes = tmp_path / "go", tmp_path / "raw", tmp_path / "stty"
    script = tmp_path / "refresh.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    command = " ".join(shlex.quote(part) for part in [*CLI, "refresh"])
    # The pane's shell outlives the Ctrl-C (a trap with a command: the refresh still gets
    # the default disposition) to report the exit code and the terminal's modes afterwards.
    script.write_text(
        f"{exports}cd {shlex.quote(str(tmp_path))}\ntrap true INT\n"
        f"while [ ! -e {go} ]; do sleep 0.05; done\n"
        f"{command}\necho EXIT=$?\nstty -a > {modes}\nsleep 600\n",
        encoding="utf-8",
    )
    tmux("new-session", "-d", "-x", "160", "-y", "40", f"sh {shlex.quote(str(script))}")
    tmux("pipe-pane", "-o", f"cat >> {shlex.quote(str(raw))}")  # every byte, escapes too
    go.touch()
    while_fetching_teams(None, slow_api)  # type: ignore[arg-type]  # no lock needed
    if how == "C-c":
        tmux("send-keys", "C-c")
    else:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (running,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        os.kill(int(running.tags[PID_TAG]), signal.SIGTERM)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not modes.exists():
        time.sleep(0.1)
    screen = tmux.screen()
    code = 130 if how == "C-c" else 143
    assert f"EXIT={code}" in screen, screen
    name = "SIGINT" if how == "C-c" else "SIGTERM"
    line = rf"football-assets: interrupted \({name}\): while fetching the teams \(\d+/13\); nothing"
    assert re.search(line, screen.replace("\n", "")), screen
    written = raw.read_bytes()
    assert HIDE_CURSOR in written  # the live display hid it...
    assert written.rindex(SHOW_CURSOR) > written.rindex(HIDE_CURSOR)  # ...and it is back
    assert re.search(r"(?<![-\w])echo(?!\w)", modes.read_text()), modes.read_text()
    assert re.search(r"(?<![-\w])icanon(?!\w)", modes.read_text())


def test_the_eta_counts_only_the_competitions_left() -> None:
    """10 of 13 fetched at 3 requests per 2.1 s: the 3 left leave at 2.1, 2.2 and 2.3 s, so
    the ETA at 0.3 s is 2 s (counting all 13 would show 10.2 s)."""
    state = RefreshState(live_api=True, limit=3, window_seconds=2.0, margin=0.1)
    state.phase, state.total, state.fetched = Phase.TEAMS, 13, 10
    for at in (0.0, 0.1, 0.2):
        state.forecast.request_sent(at)

    assert state.eta(now=0.3) == pytest.approx(2.0)

    state.fetched = 13
    assert state.eta(now=0.3) == 0.0
