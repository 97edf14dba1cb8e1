"""Tests of the football-data.org v4 test double, over real loopback HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from test_support.api_double import (
    DEFAULT_API_KEY,
    MSG_INVALID_TOKEN,
    MSG_NOT_FOUND,
    MSG_RESTRICTED,
    SNAPSHOT_DIR,
    ApiData,
    Fault,
    FootballApiDouble,
    RequestRecord,
    make_competition,
    make_team,
)

SAMPLE = SNAPSHOT_DIR
AUTH = {"X-Auth-Token": DEFAULT_API_KEY}
TIMEOUT = 5.0


def _recorded(name: str) -> Any:
    return json.loads((SAMPLE / name).read_text(encoding="utf-8"))


@pytest.fixture
def api() -> Iterator[FootballApiDouble]:
    # Generous limit: tests that are not about rate limiting must never hit it.
    with FootballApiDouble(ApiData.from_sample_dir(SAMPLE), limit=1000) as double:
        yield double


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers.update(AUTH)
        yield s


def _get(s: requests.Session, url: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return s.get(url, **kwargs)


# ---- shapes ---------------------------------------------------------------------------------


def test_sample_dir_has_the_recorded_files() -> None:
    data = ApiData.from_sample_dir(SAMPLE)
    assert len(data.competitions) == 13
    assert len(data.teams) == 13
    assert sum(len(t) for t in data.teams.values()) == 264
    assert len(data.team_ids()) == 226


def test_competitions_match_recording(api: FootballApiDouble, session: requests.Session) -> None:
    assert api.base_url == f"http://127.0.0.1:{api.port}/v4"
    response = _get(session, f"{api.base_url}/competitions")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    payload = response.json()
    assert payload == _recorded("competitions.json")
    assert payload["count"] == 13 == len(payload["competitions"])
    assert payload["filters"] == {"client": "example"}


def test_every_teams_response_matches_recording(
    api: FootballApiDouble, session: requests.Session
) -> None:
    for competition_id in sorted(api.data.teams):
        response = _get(session, f"{api.base_url}/competitions/{competition_id}/teams")
        assert response.status_code == 200
        assert response.json() == _recorded(f"teams_{competition_id}.json"), competition_id


def test_teams_empty_competition_and_premier_league(
    api: FootballApiDouble, session: requests.Session
) -> None:
    bsa = _get(session, f"{api.base_url}/competitions/2013/teams").json()
    assert bsa["count"] == 0 and bsa["teams"] == []
    assert bsa["competition"]["name"] == "Campeonato Brasileiro Série A"
    pl = _get(session, f"{api.base_url}/competitions/2021/teams").json()
    assert pl["count"] == 20 == len(pl["teams"])
    assert set(pl) == {"count", "filters", "competition", "season", "teams"}
    assert pl["competition"] == {
        "id": 2021,
        "name": "Premier League",
        "code": "PL",
        "type": "LEAGUE",
        "emblem": "https://crests.football-data.org/PL.png",
    }
    # The live API also accepts the competition code in the URL.
    assert _get(session, f"{api.base_url}/competitions/PL/teams").json() == pl


def test_utf8_on_the_wire(api: FootballApiDouble, session: requests.Session) -> None:
    raw = _get(session, f"{api.base_url}/competitions/2002/teams").content
    assert "FC Bayern München".encode() in raw


# ---- auth and errors ------------------------------------------------------------------------


def test_missing_key_is_403(api: FootballApiDouble) -> None:
    response = requests.get(f"{api.base_url}/competitions", timeout=TIMEOUT)
    assert response.status_code == 403
    assert response.json() == {"message": MSG_RESTRICTED, "errorCode": 403}
    assert response.headers["X-API-Version"] == "v4"
    assert "X-Requests-Available-Minute" in response.headers


def test_wrong_key_is_400(api: FootballApiDouble) -> None:
    response = requests.get(
        f"{api.base_url}/competitions", headers={"X-Auth-Token": "nope"}, timeout=TIMEOUT
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Your API token is invalid.", "errorCode": 400}
    assert MSG_INVALID_TOKEN == "Your API token is invalid."
    assert api.requests[-1].token == "nope"


def test_auth_disabled() -> None:
    with FootballApiDouble(ApiData.from_sample_dir(SAMPLE), api_key=None) as double:
        response = requests.get(f"{double.base_url}/competitions", timeout=TIMEOUT)
        assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/competitions/9999/teams", "/competitions/XYZ/teams", "/areas", "/competitions/2021"],
)
def test_unknown_resources_are_404(
    api: FootballApiDouble, session: requests.Session, path: str
) -> None:
    response = _get(session, api.base_url + path)
    assert response.status_code == 404
    assert response.json() == {"message": MSG_NOT_FOUND, "errorCode": 404}


def test_restricted_competition_is_403(api: FootballApiDouble, session: requests.Session) -> None:
    api.data.restricted.add(2021)
    api.data.restricted.add(2099)  # not listed, but outside the plan
    for competition_id in (2021, 2099):
        response = _get(session, f"{api.base_url}/competitions/{competition_id}/teams")
        assert response.status_code == 403
        assert response.json() == {"message": MSG_RESTRICTED, "errorCode": 403}


# ---- rate limit -----------------------------------------------------------------------------


def test_rate_headers_count_down_then_429() -> None:
    with FootballApiDouble(ApiData.from_sample_dir(SAMPLE), limit=3) as double:
        with requests.Session() as s:
            s.headers.update(AUTH)
            seen = []
            for _ in range(3):
                r = _get(s, f"{double.base_url}/competitions")
                assert r.status_code == 200
                assert r.headers["X-Authenticated-Client"] == "example"
                assert 1 <= int(r.headers["X-RequestCounter-Reset"]) <= 60
                seen.append(int(r.headers["X-Requests-Available-Minute"]))
            assert seen == [2, 1, 0]
            refused = _get(s, f"{double.base_url}/competitions")
        assert refused.status_code == 429
        assert "Retry-After" not in refused.headers
        wait = int(refused.headers["X-RequestCounter-Reset"])
        assert 1 <= wait <= 60
        assert refused.json() == {
            "message": f"You reached your request limit. Wait {wait} seconds.",
            "errorCode": 429,
        }
        assert refused.headers["X-Requests-Available-Minute"] == "0"
        assert double.refused_count() == 1
        assert double.requests[-1].refused and double.requests[-1].status == 429


def test_refusals_do_not_consume_budget_and_window_recovers() -> None:
    with (
        FootballApiDouble(ApiData.from_sample_dir(SAMPLE), limit=2, window_seconds=1.0) as d,
        requests.Session() as s,
    ):
        s.headers.update(AUTH)
        url = f"{d.base_url}/competitions"
        assert [_get(s, url).status_code for _ in range(5)] == [200, 200, 429, 429, 429]
        last = _get(s, url)
        # Waiting the advertised (rounded-up) reset is always enough.
        time.sleep(int(last.headers["X-RequestCounter-Reset"]))
        fresh = _get(s, url)
        assert fresh.status_code == 200
        assert fresh.headers["X-Requests-Available-Minute"] == "1"
        assert d.refused_count() == 4
        assert d.count() == 7
        assert d.max_requests_in_any_window(1.0) == 2


def test_concurrent_clients_get_exactly_the_limit() -> None:
    with FootballApiDouble(ApiData.from_sample_dir(SAMPLE), limit=10) as double:

        def fetch(_: int) -> int:
            return requests.get(
                f"{double.base_url}/competitions", headers=AUTH, timeout=TIMEOUT
            ).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(fetch, range(20)))
        assert codes.count(200) == 10 and codes.count(429) == 10
        assert double.refused_count() == 10


def test_set_limit_on_the_fly(api: FootballApiDouble, session: requests.Session) -> None:
    url = f"{api.base_url}/competitions"
    assert _get(session, url).status_code == 200  # 1 used in the current window
    api.set_limit(2, window_seconds=30.0)
    assert (api.limit, api.window_seconds) == (2, 30.0)
    r = _get(session, url)
    assert r.status_code == 200 and r.headers["X-Requests-Available-Minute"] == "0"
    assert _get(session, url).status_code == 429
    api.reset_rate_limit()
    assert _get(session, url).status_code == 200


def test_accounting_helpers() -> None:
    double = FootballApiDouble(ApiData())

    def rec(t: float, path: str = "/v4/competitions", refused: bool = False) -> RequestRecord:
        return RequestRecord(t, path, "", None, 1, status=429 if refused else 200, refused=refused)

    double.requests.extend(
        [
            rec(0.0),
            rec(0.5, "/v4/competitions/2021/teams"),
            rec(0.9, refused=True),
            rec(0.99),
            rec(1.0, "/v4/competitions/2002/teams"),  # [0.0, 1.0) is half-open
            rec(5.0),
        ]
    )
    assert double.max_requests_in_any_window(1.0) == 3
    assert double.max_requests_in_any_window(0.1) == 2
    assert double.max_requests_in_any_window(10.0) == 5
    assert double.count() == 6
    assert double.count("/v4/competitions/") == 2
    assert double.count("/competitions/2021") == 1  # "/v4" may be left out
    assert double.refused_count() == 1
    assert FootballApiDouble(ApiData()).max_requests_in_any_window(60) == 0


# ---- faults ---------------------------------------------------------------------------------


def test_status_fault_json_and_html(api: FootballApiDouble, session: requests.Session) -> None:
    teams = f"{api.base_url}/competitions/2021/teams"
    api.inject(r"/competitions/\d+/teams$", Fault.status(503), times=2)
    api.inject(r"/teams$", Fault.status(502, "<html><body>Bad Gateway</body></html>"))
    assert api.pending_faults() == 3
    # The listing does not match the pattern, so it is unaffected and does not consume faults.
    assert _get(session, f"{api.base_url}/competitions").status_code == 200
    first, second, third = (_get(session, teams) for _ in range(3))
    assert first.status_code == second.status_code == 503
    assert first.json() == {"message": "Service Unavailable", "errorCode": 503}
    assert "X-Requests-Available-Minute" in first.headers
    assert third.status_code == 502
    assert third.headers["Content-Type"].startswith("text/html")
    assert "Bad Gateway" in third.text
    assert _get(session, teams).status_code == 200
    assert api.pending_faults() == 0
    assert [r.fault for r in api.requests] == [None, "status", "status", "status", None]


def test_status_fault_custom_headers_and_clear(
    api: FootballApiDouble, session: requests.Session
) -> None:
    url = f"{api.base_url}/competitions"
    api.inject("competitions", Fault.status(500, {"oops": True}, headers={"X-Debug": "1"}))
    r = _get(session, url)
    assert (r.status_code, r.json(), r.headers["X-Debug"]) == (500, {"oops": True}, "1")
    api.inject("competitions", Fault.status(500), times=5)
    api.clear_faults()
    assert _get(session, url).status_code == 200


def test_drop_fault(api: FootballApiDouble, session: requests.Session) -> None:
    url = f"{api.base_url}/competitions"
    assert _get(session, url).status_code == 200  # warm a keep-alive connection
    api.inject("/competitions$", Fault.drop())
    with pytest.raises(requests.ConnectionError):
        _get(session, url)
    assert _get(session, url).status_code == 200  # the client reconnects
    dropped = api.requests[1]
    assert dropped.fault == "drop" and dropped.status is None and not dropped.refused


def test_delay_fault_trips_read_timeout(api: FootballApiDouble, session: requests.Session) -> None:
    url = f"{api.base_url}/competitions/2021/teams"
    api.inject("/teams$", Fault.delay(0.6))
    with pytest.raises(requests.ReadTimeout):
        _get(session, url, timeout=0.15)
    assert _get(session, url).json()["count"] == 20
    api.inject("/teams$", Fault.delay(0.1))
    slow = _get(session, url)  # within the timeout: answered normally, just late
    assert slow.status_code == 200 and slow.json()["count"] == 20
    assert [r.fault for r in api.requests] == ["delay", None, "delay"]


def test_body_fault(api: FootballApiDouble, session: requests.Session) -> None:
    url = f"{api.base_url}/competitions"
    api.inject("/competitions$", Fault.body("<html>maintenance</html>"))
    api.inject(
        "/competitions$", Fault.body('{"count": 13, "compet', content_type="application/json")
    )
    html = _get(session, url)
    assert html.status_code == 200 and html.text == "<html>maintenance</html>"
    with pytest.raises(requests.JSONDecodeError):
        html.json()
    truncated = _get(session, url)
    assert truncated.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        truncated.json()


def test_rate_limited_fault(api: FootballApiDouble, session: requests.Session) -> None:
    url = f"{api.base_url}/competitions"
    api.inject("", Fault.rate_limited(7))
    refused = _get(session, url)
    assert refused.status_code == 429
    assert refused.json() == {
        "message": "You reached your request limit. Wait 7 seconds.",
        "errorCode": 429,
    }
    assert refused.headers["X-RequestCounter-Reset"] == "7"
    assert "Retry-After" not in refused.headers
    ok = _get(session, url)
    # The injected refusal used none of the budget.
    assert ok.headers["X-Requests-Available-Minute"] == str(api.limit - 1)
    assert api.refused_count() == 1


def test_module_level_fault_aliases() -> None:
    from test_support import api_double

    assert api_double.status(503) == Fault.status(503)
    assert api_double.drop() == Fault.drop()
    assert api_double.delay(1) == Fault.delay(1)
    assert api_double.body("x") == Fault.body("x")
    assert api_double.rate_limited(3) == Fault.rate_limited(3)


# ---- data mutation --------------------------------------------------------------------------


def test_mutations_are_served_on_next_request(
    api: FootballApiDouble, session: requests.Session
) -> None:
    pl_url = f"{api.base_url}/competitions/2021/teams"
    assert api.data.rename_team(57, "Arsenal Renamed") == 2  # plays in PL and CL
    teams = _get(session, pl_url).json()["teams"]
    assert {t["name"] for t in teams if t["id"] == 57} == {"Arsenal Renamed"}

    api.data.remove_team(2021, 57)
    pl = _get(session, pl_url).json()
    assert pl["count"] == 19 and 57 not in {t["id"] for t in pl["teams"]}

    api.data.remove_competition(2021)
    assert _get(session, pl_url).status_code == 404
    assert _get(session, f"{api.base_url}/competitions").json()["count"] == 12

    api.data.add_competition(
        make_competition(9001, "Test League", "TST"),
        teams=[make_team(1, "Alpha FC"), make_team(2, "Beta FC")],
    )
    listing = _get(session, f"{api.base_url}/competitions").json()
    assert listing["count"] == 13 and listing["competitions"][-1]["code"] == "TST"
    added = _get(session, f"{api.base_url}/competitions/9001/teams").json()
    assert added["count"] == 2
    assert added["filters"] == {"season": "2024"}
    assert added["competition"]["name"] == "Test League"
    api.data.add_team(9001, make_team(3, "Gamma FC", founded=1900))
    assert _get(session, f"{api.base_url}/competitions/9001/teams").json()["count"] == 3

    # Direct edits and swapping the whole data set work too.
    api.data.competitions[0]["name"] = "Renamed Competition"
    assert _get(session, f"{api.base_url}/competitions").json()["competitions"][0]["name"] == (
        "Renamed Competition"
    )
    api.data = ApiData(competitions=[make_competition(1, "Solo", "SOL")])
    assert _get(session, f"{api.base_url}/competitions").json()["count"] == 1
    assert _get(session, f"{api.base_url}/competitions/1/teams").json()["teams"] == []


def test_copy_is_independent() -> None:
    original = ApiData.from_sample_dir(SAMPLE)
    clone = original.copy()
    clone.rename_team(57, "Changed")
    clone.restricted.add(1)
    assert all(t["name"] == "Arsenal FC" for t in original.teams[2021] if t["id"] == 57)
    assert original.restricted == set()
    assert clone.competitions == original.competitions


# ---- connection handling --------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(
    api: FootballApiDouble, session: requests.Session
) -> None:
    responses = [
        _get(session, f"{api.base_url}/competitions"),
        _get(session, f"{api.base_url}/competitions/2021/teams"),
        _get(session, f"{api.base_url}/competitions/9999/teams"),  # errors keep it alive too
        _get(session, f"{api.base_url}/competitions/2013/teams"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 404, 200]
    assert all(r.headers.get("Connection", "").lower() != "close" for r in responses)
    assert len({r.peer_port for r in api.requests}) == 1


def test_stop_is_prompt_with_open_connections_and_sleeping_handlers() -> None:
    double = FootballApiDouble(ApiData.from_sample_dir(SAMPLE)).start()
    url = f"{double.base_url}/competitions"
    idle, busy = requests.Session(), requests.Session()
    assert _get(idle, url, headers=AUTH).status_code == 200  # leaves an idle keep-alive
    double.inject("", Fault.delay(30))
    errors: list[BaseException] = []

    def wait_for_answer() -> None:
        try:
            _get(busy, url, headers=AUTH, timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    sleeper = threading.Thread(target=wait_for_answer)
    sleeper.start()
    time.sleep(0.2)
    started = time.monotonic()
    double.stop()
    assert time.monotonic() - started < 2
    sleeper.join(timeout=5)
    assert not sleeper.is_alive() and len(errors) == 1  # closed without an answer
    double.stop()  # idempotent
    idle.close()
    busy.close()
    with pytest.raises(RuntimeError):
        _ = double.base_url


def test_double_start_refused_and_restart() -> None:
    double = FootballApiDouble(ApiData(), api_key=None)
    with double, pytest.raises(RuntimeError):
        double.start()
    with double:  # a stopped double can be started again
        assert requests.get(f"{double.base_url}/competitions", timeout=TIMEOUT).json() == {
            "count": 0,
            "filters": {"client": "example"},
            "competitions": [],
        }
