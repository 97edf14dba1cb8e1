"""The request budget is shared: by threads, by processes, and with the server's own word.

Windows are the API's minute scaled down to TEST_WINDOW seconds. The double counts what it
admitted at arrival; `max_requests_in_any_window` is a sliding window, stricter than the
server's fixed one, so passing it means no fixed window was ever over the limit either.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from football_assets.resources.rate_limit import SharedRateLimiter, safety_margin
from football_assets_tests.api_double import FootballApiDouble
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW, live_api

# A process fetching some competitions' teams through the production resource, started on cue
# so the two processes really compete for the budget.
CHILD = """
import json, sys
from football_assets.resources.api import LiveFootballDataApi

config, keys = json.loads(sys.argv[1]), json.loads(sys.argv[2])
api = LiveFootballDataApi(**config)
print("ready", flush=True)
sys.stdin.readline()
counts = {key: len(api.fetch_teams(key).payload["teams"]) for key in keys}
print(json.dumps(counts), flush=True)
"""


def team_counts(double: FootballApiDouble) -> dict[str, int]:
    return {str(cid): len(teams) for cid, teams in double.data.teams.items()}


def test_two_processes_share_one_budget(api_double: FootballApiDouble, limiter_dir: Path) -> None:
    keys = sorted(team_counts(api_double), key=int)
    halves = [keys, list(reversed(keys))]  # 26 requests for a budget of 10 per window
    config = {
        "api_key": TEST_KEY,
        "base_url": api_double.base_url,
        "requests_per_minute": TEST_LIMIT,
        "rate_window_seconds": TEST_WINDOW,
        "limiter_path": str(limiter_dir),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(config), json.dumps(half)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for half in halves
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60)[0] for child in children]
    finally:
        for child in children:
            child.kill()

    assert [child.returncode for child in children] == [0, 0]
    expected = team_counts(api_double)
    for output, half in zip(outputs, halves, strict=True):
        assert json.loads(output) == {key: expected[key] for key in half}
    assert api_double.count() == 2 * len(keys)  # nothing refused, nothing retried
    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


def test_threads_of_one_client_share_its_budget(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    api = live_api(api_double, limiter_dir)
    keys = sorted(team_counts(api_double), key=int) * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        counts = list(pool.map(lambda key: len(api.fetch_teams(key).payload["teams"]), keys))

    assert counts == [team_counts(api_double)[key] for key in keys]
    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


def test_a_second_client_sees_what_the_first_spent(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    """Each Dagster step or run builds its own client; the budget outlives them."""
    for _ in range(3):  # 3 clients x 6 requests, one after the other
        api = live_api(api_double, limiter_dir)
        for key in ["2000", "2001", "2002", "2003", "2013", "2014"]:
            api.fetch_teams(key)
        api.teardown_after_execution(None)  # type: ignore[arg-type]

    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


def test_a_tighter_server_is_obeyed_across_processes(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    """The server allows 4 per window while 10 are configured: what one client hears from the
    server, the next one (another step, another process) heeds before sending."""
    api_double.set_limit(4, TEST_WINDOW)
    first = live_api(api_double, limiter_dir)
    for key in ["2000", "2001", "2002", "2003"]:
        first.fetch_teams(key)  # the fourth answer says 0 remain
    second = live_api(api_double, limiter_dir)  # knows nothing of its own
    second.fetch_teams("2013")

    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= 4


def test_limiter_refuses_a_zero_limit(limiter_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SharedRateLimiter(0, TEST_WINDOW, path=limiter_dir)


def test_the_safety_margin_is_small_next_to_the_window() -> None:
    assert safety_margin(60.0) == 1.0  # a minute's window loses at most a second
    assert safety_margin(1.0) == 0.1
