"""The live client against the loopback API double: budget, retries, and the errors users see.

The API's minute is scaled down to TEST_WINDOW seconds and backoff to hundredths of a second, so
every wait and retry really happens, just fast.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from football_assets import progress, settings
from football_assets.definitions import build_football_api
from football_assets.payloads import PayloadError, parse_teams
from football_assets.resources.api import LiveFootballDataApi
from football_assets.resources.api_answers import (
    FootballDataPermanentError,
    FootballDataTransientError,
    retry_after_429,
)
from football_assets.resources.api_client import log as api_logger
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW, live_api
from test_support.api_double import (
    MSG_RESTRICTED,
    Fault,
    FootballApiDouble,
    make_team,
)

ALL_COMPETITIONS = [
    "2000", "2001", "2002", "2003", "2013", "2014", "2015",
    "2016", "2017", "2018", "2019", "2021", "2152",
]  # fmt: skip
FAST = {"backoff_seconds": 0.02, "read_timeout_seconds": 0.5}


@pytest.fixture
def api(api_double: FootballApiDouble, limiter_dir: Path) -> LiveFootballDataApi:
    return live_api(api_double, limiter_dir, **FAST)


@pytest.fixture
def api_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The client's INFO lines (waits and retries), as a user reads them in a run's log."""
    caplog.set_level(logging.INFO, logger=api_logger.name)
    return lambda: [r.getMessage() for r in caplog.records if r.name == api_logger.name]


def full_refresh_requests(api: LiveFootballDataApi) -> int:
    """What raw_competitions + raw_teams ask for: the list, then every competition's teams."""
    listed = api.fetch_competitions().payload["competitions"]
    teams = [api.fetch_teams(str(c["id"])) for c in listed]
    return 1 + len(teams)


# ---- the budget -----------------------------------------------------------------------------


@pytest.mark.rate_limit
def test_a_full_refresh_waits_once_and_is_never_refused(
    api: LiveFootballDataApi, api_double: FootballApiDouble, api_log: Callable[[], list[str]]
) -> None:
    assert full_refresh_requests(api) == 14

    assert api_double.count() == 14  # no request wasted
    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT
    # 14 requests at 10 per window: the floor is one wait of one window, not one per request.
    (wait,) = api_log()
    assert "the API said no requests remain until its counter resets" in wait


def test_one_keep_alive_connection_carries_every_request(
    api: LiveFootballDataApi, api_double: FootballApiDouble
) -> None:
    full_refresh_requests(api)
    assert len({r.peer_port for r in api_double.requests}) == 1


@pytest.mark.rate_limit
def test_a_tighter_and_slower_server_is_obeyed_from_its_headers(
    api: LiveFootballDataApi, api_double: FootballApiDouble, api_log: Callable[[], list[str]]
) -> None:
    """Configured for 10 per window, the server allows 4 per 1.5 windows: its headers rule."""
    api_double.set_limit(4, 1.5 * TEST_WINDOW)
    for key in ALL_COMPETITIONS[:6]:
        api.fetch_teams(key)

    assert api_double.refused_count() == 0
    assert api_double.max_requests_in_any_window(1.5 * TEST_WINDOW) <= 4
    assert len(api_log()) == 1


@pytest.mark.rate_limit
def test_a_budget_spent_elsewhere_costs_one_refusal_then_none(
    api: LiveFootballDataApi, api_double: FootballApiDouble, api_log: Callable[[], list[str]]
) -> None:
    """Another client (another machine, a browser) used the whole window: the first request
    is refused, the client waits what the 429 says, and no later request is refused."""
    with requests.Session() as other:
        for _ in range(TEST_LIMIT):
            other.get(
                f"{api_double.base_url}/competitions", headers={"X-Auth-Token": TEST_KEY}, timeout=5
            )
    responses = [api.fetch_teams(key) for key in ALL_COMPETITIONS[:12]]

    assert api_double.refused_count() == 1
    assert [r.attempts for r in responses] == [2] + [1] * 11
    assert sum("HTTP 429" in line and "as the API asked" in line for line in api_log()) == 1


def test_a_429_is_waited_out_and_retried(
    api: LiveFootballDataApi, api_double: FootballApiDouble, api_log: Callable[[], list[str]]
) -> None:
    api_double.inject(r"/competitions/2021/teams$", Fault.rate_limited(1))
    response = api.fetch_teams("2021")

    assert len(response.payload["teams"]) == 20
    assert response.attempts == 2
    assert response.metadata()["attempts"] == 2
    assert api_double.refused_count() == 1
    (line,) = api_log()
    assert line.startswith(
        "GET /competitions/2021/teams returned HTTP 429: "
        "You reached your request limit. Wait 1 seconds."
    )
    assert "as the API asked" in line


def test_429_wait_comes_from_the_body_else_the_reset_header_else_the_window() -> None:
    said = "You reached your request limit. Wait 48 seconds."
    assert retry_after_429(said, 12, 60.0) == 48.0
    assert retry_after_429("Too many requests", 12, 60.0) == 12.0
    assert retry_after_429("", None, 60.0) == 60.0


@pytest.mark.rate_limit
def test_waiting_for_the_budget_does_not_use_up_the_retry_time(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    """Retries are bounded by time spent failing; a long wait for budget is not failing."""
    api = live_api(api_double, limiter_dir, max_retry_seconds=0.3, **FAST)
    for key in ALL_COMPETITIONS[:TEST_LIMIT]:
        api.fetch_teams(key)
    api_double.inject(r"/competitions/2021/teams$", Fault.status(503))
    response = api.fetch_teams("2021")  # waits ~a window for budget, then fails once

    assert response.attempts == 2
    assert response.rate_wait_seconds > 0.3


# ---- transient faults -----------------------------------------------------------------------

TRANSIENT = {
    "500": Fault.status(500),
    "502 html": Fault.status(502, "<html><body>Bad Gateway</body></html>"),
    "503": Fault.status(503),
    "504": Fault.status(504),
    "dropped connection": Fault.drop(),
    "read timeout": Fault.delay(2.0),
    "html maintenance page": Fault.body("<html>maintenance</html>"),
    "truncated json": Fault.body('{"count": 20, "tea', content_type="application/json"),
}


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_each_transient_fault_is_retried_until_the_data_is_right(
    api: LiveFootballDataApi,
    api_double: FootballApiDouble,
    api_log: Callable[[], list[str]],
    fault: Fault,
) -> None:
    api_double.inject(r"/competitions/2002/teams$", fault, times=2)
    response = api.fetch_teams("2002")

    assert response.payload["teams"] == api_double.data.teams[2002]
    assert response.attempts == 3
    assert api_double.count("/competitions/2002/teams") == 3
    lines = api_log()
    assert len(lines) == 2  # one line per retry, each saying what failed
    assert all(line.startswith("GET /competitions/2002/teams") for line in lines)
    assert all("backing off with jitter" in line for line in lines)


def test_retries_stop_after_the_bounded_time_with_one_line(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    api = live_api(api_double, limiter_dir, max_retry_seconds=0.5, **FAST)
    api_double.inject(r"/teams$", Fault.status(503), times=1000)
    with pytest.raises(FootballDataTransientError) as failed:
        api.fetch_teams("2021")

    message = str(failed.value)
    attempts = api_double.count("/competitions/2021/teams")
    assert attempts >= 3
    assert message.startswith(
        f"GET /competitions/2021/teams returned HTTP 503: Service Unavailable. "
        f"Gave up after {attempts} attempts in "
    )
    assert message.endswith(
        "(FOOTBALL_DATA_MAX_RETRY_SECONDS=0.5); re-run when the API is reachable."
    )
    assert "\n" not in message


def test_a_server_that_keeps_refusing_is_given_up_within_the_retry_time(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    """A 429's wait counts as failing (it is waited out as the server's word, in the budget):
    with 2 s to fail, the second 1 s refusal ends it, though the third answer would be data."""
    api = live_api(api_double, limiter_dir, max_retry_seconds=2.0, **FAST)
    api_double.inject(r"/teams$", Fault.rate_limited(1), times=2)
    with pytest.raises(FootballDataTransientError) as failed:
        api.fetch_teams("2021")

    assert api_double.count("/competitions/2021/teams") == 2
    assert str(failed.value).startswith(
        "GET /competitions/2021/teams returned HTTP 429: You reached your request limit. "
        "Wait 1 seconds. Gave up after 2 attempts in "
    )


def test_an_unreachable_api_fails_with_one_line(limiter_dir: Path) -> None:
    port = closed_port()
    api = LiveFootballDataApi(
        api_key=TEST_KEY,
        base_url=f"http://127.0.0.1:{port}/v4",
        rate_window_seconds=TEST_WINDOW,
        max_retry_seconds=0.2,
        backoff_seconds=0.02,
        budget_state_dir=str(limiter_dir),
    )
    with pytest.raises(FootballDataTransientError) as failed:
        api.fetch_competitions()
    message = str(failed.value)
    assert message.startswith(
        f"GET /competitions: the connection to http://127.0.0.1:{port}/v4 failed or was dropped "
        "(ConnectionRefusedError). Gave up after "
    )
    assert "\n" not in message and TEST_KEY not in message


def test_a_body_that_is_never_json_names_the_partition(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    api = live_api(api_double, limiter_dir, max_retry_seconds=0.2, **FAST)
    api_double.inject(r"/teams$", Fault.body("<html>maintenance</html>"), times=1000)
    with pytest.raises(FootballDataTransientError) as failed:
        api.fetch_teams("2021")
    assert str(failed.value).startswith(
        "GET /competitions/2021/teams returned HTTP 200 but its body is not JSON "
        "(Content-Type 'text/html; charset=utf-8', 24 bytes) (raw_teams partition 2021). "
        "Gave up after "
    )


@contextmanager
def unanswered_connects() -> Iterator[str]:
    """A base URL whose connections never complete: a listening socket whose accept queue is
    full and never drained, so the kernel drops further SYNs, as a firewall or a hung host
    would. Only the connect timeout can end such an attempt."""
    server = socket.socket()
    fillers: list[socket.socket] = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        address = server.getsockname()
        for _ in range(4):  # more than the queue holds; the rest are left half-open
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        with pytest.raises(TimeoutError):  # the queue is full: a connect really hangs
            socket.create_connection(address, timeout=0.2).close()
        yield f"http://{address[0]}:{address[1]}/v4"
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def test_the_connect_timeout_ends_a_connection_that_never_completes(limiter_dir: Path) -> None:
    with unanswered_connects() as base_url:
        api = LiveFootballDataApi(
            api_key=TEST_KEY,
            base_url=base_url,
            rate_window_seconds=TEST_WINDOW,
            connect_timeout_seconds=0.2,
            read_timeout_seconds=30.0,
            max_retry_seconds=0.5,
            backoff_seconds=0.02,
            budget_state_dir=str(limiter_dir),
        )
        with pytest.raises(FootballDataTransientError) as failed:
            api.fetch_competitions()

    message = str(failed.value)
    assert message.startswith(
        f"GET /competitions: no connection to {base_url} within 0.2 s "
        "(FOOTBALL_DATA_CONNECT_TIMEOUT). Gave up after "
    ), message
    assert message.endswith(
        "(FOOTBALL_DATA_MAX_RETRY_SECONDS=0.5); re-run when the API is reachable."
    )


def test_backoff_doubles_with_jitter_of_at_most_one_base(
    api_double: FootballApiDouble, limiter_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = 0.05
    api = live_api(api_double, limiter_dir, backoff_seconds=base, read_timeout_seconds=0.5)
    api_double.inject(r"/competitions$", Fault.status(503), times=5)
    caplog.set_level(logging.INFO, logger=api_logger.name)

    response = api.fetch_competitions()

    assert response.attempts == 6
    waits = [
        event["seconds"]
        for record in caplog.records
        if (event := progress.event_of(record)) and event["reason"] == "retry"
    ]
    # Attempt n waits base * 2**(n-1), plus up to one base at random.
    assert len(waits) == 5
    for attempt, wait in enumerate(waits, start=1):
        low = base * 2 ** (attempt - 1)
        assert low <= wait <= low + base, (attempt, waits)


# ---- permanent errors: one request, one line ------------------------------------------------


def test_a_bad_key_fails_fast_telling_which_variable(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    api = live_api(api_double, limiter_dir, api_key="wrong-key-4c1d", **FAST)
    with pytest.raises(FootballDataPermanentError) as failed:
        api.fetch_competitions()
    assert str(failed.value) == (
        "GET /competitions returned HTTP 400: Your API token is invalid. "
        "Check FOOTBALL_DATA_API_KEY (or unset it to run on the snapshot)."
    )
    assert api_double.count() == 1


def test_a_competition_outside_the_plan_is_named(
    api: LiveFootballDataApi, api_double: FootballApiDouble
) -> None:
    api_double.data.restricted.add(2021)
    with pytest.raises(FootballDataPermanentError) as failed:
        api.fetch_teams("2021")
    assert str(failed.value) == (
        f"GET /competitions/2021/teams returned HTTP 403: {MSG_RESTRICTED} "
        "Your plan (FOOTBALL_DATA_API_KEY) does not include competition 2021; "
        "upgrade the plan at football-data.org or use a key that has it."
    )
    assert api_double.count() == 1


def test_an_unknown_competition_is_a_404_naming_it(
    api: LiveFootballDataApi, api_double: FootballApiDouble
) -> None:
    with pytest.raises(FootballDataPermanentError) as failed:
        api.fetch_teams("9999")
    assert str(failed.value) == (
        "GET /competitions/9999/teams returned HTTP 404: "
        "The resource you are looking for does not exist. "
        "The API does not know competition 9999; check the id."
    )
    assert api_double.count() == 1


def test_a_redirect_is_not_followed_so_the_key_stays_home(
    api: LiveFootballDataApi, api_double: FootballApiDouble
) -> None:
    api_double.inject("", Fault.status(301, "", headers={"Location": "http://elsewhere.test/"}))
    with pytest.raises(FootballDataPermanentError, match="redirect to 'http://elsewhere.test/'"):
        api.fetch_competitions()
    assert api_double.count() == 1


def test_a_key_echoed_by_the_server_is_scrubbed(
    api: LiveFootballDataApi, api_double: FootballApiDouble
) -> None:
    echo = Fault.status(400, {"message": f"Token {TEST_KEY} is invalid.", "errorCode": 400})
    api_double.inject("", echo)
    with pytest.raises(FootballDataPermanentError) as failed:
        api.fetch_competitions()
    assert TEST_KEY not in str(failed.value)
    assert "Token [FOOTBALL_DATA_API_KEY] is invalid." in str(failed.value)


# ---- payloads -------------------------------------------------------------------------------


def test_a_team_without_an_id_names_the_field_and_the_partition(
    api: LiveFootballDataApi, api_double: FootballApiDouble
) -> None:
    team = make_team(1, "No Id FC")
    del team["id"]
    api_double.data.add_team(2021, team)
    payload = api.fetch_teams("2021").payload  # HTTP is fine; the content is not
    with pytest.raises(PayloadError) as failed:
        parse_teams(payload, where="raw_teams partition 2021")
    assert str(failed.value) == (
        "raw_teams partition 2021: unusable answer, field 'teams.20.id': field required"
    )


def test_an_empty_teams_list_is_valid(api: LiveFootballDataApi) -> None:
    payload = api.fetch_teams("2013").payload  # Série A between seasons
    assert payload["teams"] == []
    assert parse_teams(payload, where="raw_teams partition 2013").teams == []


# ---- configuration --------------------------------------------------------------------------


def test_timeouts_and_retry_time_come_from_the_environment(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOOTBALL_DATA_API_KEY", TEST_KEY)
    monkeypatch.setenv("FOOTBALL_DATA_CONNECT_TIMEOUT", "2.5")
    monkeypatch.setenv("FOOTBALL_DATA_READ_TIMEOUT", "12")
    monkeypatch.setenv("FOOTBALL_DATA_MAX_RETRY_SECONDS", "90")
    api = build_football_api()
    assert isinstance(api, LiveFootballDataApi)
    assert (api.connect_timeout_seconds, api.read_timeout_seconds, api.max_retry_seconds) == (
        2.5,
        12.0,
        90.0,
    )


def test_unset_timeouts_have_safe_defaults(clean_env: None) -> None:
    config = settings.load()
    assert (config.connect_timeout, config.read_timeout) == (5.0, 30.0)
    assert config.max_retry_seconds == 300.0


def test_a_bad_timeout_is_one_clear_line(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTBALL_DATA_READ_TIMEOUT", "soon")
    with pytest.raises(settings.ConfigError) as failed:
        settings.load()
    assert str(failed.value) == (
        "FOOTBALL_DATA_READ_TIMEOUT='soon' is not a number; set it to a number of seconds "
        "greater than 0 and at most 86400, e.g. 30"
    )


def test_the_key_is_not_in_the_resource_repr(api: LiveFootballDataApi) -> None:
    assert TEST_KEY not in repr(api)


def closed_port() -> int:
    """A local port nothing listens on: bound by the OS for us, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_200_whose_body_is_a_json_list_fails_once_without_retrying(
    api_double: FootballApiDouble, limiter_dir: Path
) -> None:
    """A well-formed answer of the wrong shape will be the same next time: no retries."""
    api = live_api(api_double, limiter_dir, max_retry_seconds=5.0, **FAST)
    api_double.inject(
        r"/competitions/2021/teams$", Fault.body("[1, 2]", content_type="application/json"), 1000
    )

    with pytest.raises(FootballDataPermanentError) as failed:
        api.fetch_teams("2021")

    assert str(failed.value) == (
        "GET /competitions/2021/teams returned HTTP 200 but its body is a JSON list, not an "
        "object (raw_teams partition 2021)."
    )
    assert api_double.count("/competitions/2021/teams") == 1
