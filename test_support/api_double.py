"""Loopback test double of the football-data.org v4 API.

Serves ``GET /v4/competitions`` and ``GET /v4/competitions/{id}/teams`` over real HTTP on
127.0.0.1, with the live API's auth errors, fixed-window rate limit and headers (see
football_assets/snapshot/README.md), plus request accounting and fault injection
so tests can check that a client stays within the limit and survives a misbehaving server.

Typical use::

    data = ApiData.from_sample_dir()
    with FootballApiDouble(data, limit=10, window_seconds=1.0) as api:
        run_client(base_url=api.base_url, api_key="test-key")
        assert api.max_requests_in_any_window(1.0) <= 10
        api.data.rename_team(57, "Arsenal")  # served from the next request on
        api.inject(r"/teams$", Fault.status(503), times=2)

Request handling order: rate limit -> injected fault -> auth -> routing. So a fault only hits a
request the limiter admitted, and every admitted request (also faulted or failing auth) uses
one request of the budget, except an injected ``rate_limited`` fault, which is a refusal.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_API_KEY",
    "MSG_INVALID_TOKEN",
    "MSG_NOT_FOUND",
    "MSG_RESTRICTED",
    "ApiData",
    "Fault",
    "FootballApiDouble",
    "RequestRecord",
    "body",
    "SNAPSHOT_DIR",
    "delay",
    "drop",
    "make_competition",
    "make_team",
    "rate_limited",
    "status",
]

JsonDict = dict[str, Any]

DEFAULT_API_KEY = "test-key"
SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "football_assets" / "snapshot"

# Error bodies exactly as documented for the live API.
MSG_INVALID_TOKEN = "Your API token is invalid."
MSG_RESTRICTED = (
    "The resource you are looking for is restricted and apparently not within your "
    "permissions. Please check your subscription."
)
MSG_NOT_FOUND = "The resource you are looking for does not exist."

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
_TEAMS_PATH = re.compile(r"^/v4/competitions/([^/]+)/teams$")
_SUMMARY_KEYS = ("id", "name", "code", "type", "emblem")


def _dumps(obj: Any) -> bytes:
    # Compact UTF-8 like the live API, so clients must decode non-ASCII names themselves.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(message: str, code: int) -> JsonDict:
    return {"message": message, "errorCode": code}


# --------------------------------------------------------------------------------------------
# Data served by the double
# --------------------------------------------------------------------------------------------


def make_competition(
    competition_id: int,
    name: str,
    code: str,
    *,
    type: str = "LEAGUE",  # the API's own field name
    season_start: str = "2024-08-16",
    season_end: str = "2025-05-25",
    **extra: Any,
) -> JsonDict:
    """A /competitions item shaped like the recorded ones (for small hand-made data sets)."""
    item: JsonDict = {
        "id": competition_id,
        "area": {"id": 2000 + competition_id % 1000, "name": "Area", "code": "ARE", "flag": None},
        "name": name,
        "code": code,
        "type": type,
        "emblem": f"https://crests.football-data.org/{code}.png",
        "plan": "TIER_ONE",
        "currentSeason": {
            "id": 10_000 + competition_id,
            "startDate": season_start,
            "endDate": season_end,
            "currentMatchday": 1,
            "winner": None,
        },
        "numberOfAvailableSeasons": 1,
        "lastUpdated": "2025-01-31T00:00:00Z",
    }
    item.update(extra)
    return item


def make_team(team_id: int, name: str, **extra: Any) -> JsonDict:
    """A team dict shaped like the recorded ones; ``extra`` overrides any field."""
    team: JsonDict = {
        "area": {"id": 2072, "name": "England", "code": "ENG", "flag": None},
        "id": team_id,
        "name": name,
        "shortName": name,
        "tla": name[:3].upper(),
        "crest": f"https://crests.football-data.org/{team_id}.png",
        "address": None,
        "website": None,
        "founded": None,
        "clubColors": None,
        "venue": None,
        "runningCompetitions": [],
        "coach": {
            "id": None,
            "firstName": None,
            "lastName": None,
            "name": None,
            "dateOfBirth": None,
            "nationality": None,
            "contract": {"start": None, "until": None},
        },
        "squad": [],
        "staff": [],
        "lastUpdated": "2025-01-31T00:00:00Z",
    }
    team.update(extra)
    return team


@dataclass
class ApiData:
    """What the double serves. Mutate it freely between (or during) client runs.

    - ``competitions``: the items of ``/competitions``, in served order.
    - ``teams``: competition id -> its team dicts. A listed competition without an entry
      serves ``count: 0`` (like Série A between seasons).
    - ``seasons``: competition id -> ``season`` object of the teams response (the recorded one
      when loaded from files); falls back to the competition's ``currentSeason``.
    - ``restricted``: competition ids answered with 403 (outside the plan), listed or not.

    The teams response's ``competition`` summary is always derived from the listing, so a
    renamed competition stays consistent (for the recording it equals the recorded object).
    Use the helpers or hold ``lock`` for multi-step edits while a client is running.
    """

    competitions: list[JsonDict] = field(default_factory=list)
    teams: dict[int, list[JsonDict]] = field(default_factory=dict)
    seasons: dict[int, JsonDict] = field(default_factory=dict)
    restricted: set[int] = field(default_factory=set)
    client: str = "example"
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def from_sample_dir(cls, path: str | Path | None = None) -> ApiData:
        """Load ``competitions.json`` and every ``teams_<id>.json`` (fresh dicts each call)."""
        root = Path(path) if path is not None else SNAPSHOT_DIR
        listing = json.loads((root / "competitions.json").read_text(encoding="utf-8"))
        data = cls(competitions=listing["competitions"], client=listing["filters"]["client"])
        for teams_file in sorted(root.glob("teams_*.json")):
            recorded = json.loads(teams_file.read_text(encoding="utf-8"))
            competition_id = int(recorded["competition"]["id"])
            data.teams[competition_id] = recorded["teams"]
            data.seasons[competition_id] = recorded["season"]
        return data

    def copy(self) -> ApiData:
        """Deep copy with its own lock (dataclasses.replace/deepcopy choke on the lock)."""
        with self.lock:
            return ApiData(
                competitions=copy.deepcopy(self.competitions),
                teams=copy.deepcopy(self.teams),
                seasons=copy.deepcopy(self.seasons),
                restricted=set(self.restricted),
                client=self.client,
            )

    # ---- lookups ---------------------------------------------------------------------------

    def competition(self, key: int | str) -> JsonDict | None:
        """A listed competition by id or by code (the live API accepts both in URLs)."""
        with self.lock:
            for item in self.competitions:
                if item["id"] == key or str(item["id"]) == str(key) or item.get("code") == key:
                    return item
        return None

    def team_ids(self, competition_id: int | None = None) -> set[int]:
        with self.lock:
            groups = (
                [self.teams.get(competition_id, [])]
                if competition_id is not None
                else list(self.teams.values())
            )
            return {team["id"] for group in groups for team in group}

    # ---- mutations -------------------------------------------------------------------------

    def add_competition(
        self,
        competition: JsonDict,
        teams: list[JsonDict] | None = None,
        season: JsonDict | None = None,
    ) -> None:
        with self.lock:
            self.remove_competition(competition["id"])
            self.competitions.append(competition)
            self.teams[competition["id"]] = list(teams or [])
            if season is not None:
                self.seasons[competition["id"]] = season

    def remove_competition(self, competition_id: int) -> None:
        """Unlist it; its teams endpoint then answers 404."""
        with self.lock:
            self.competitions[:] = [c for c in self.competitions if c["id"] != competition_id]
            self.teams.pop(competition_id, None)
            self.seasons.pop(competition_id, None)

    def add_team(self, competition_id: int, team: JsonDict) -> None:
        with self.lock:
            self.teams.setdefault(competition_id, []).append(team)

    def remove_team(self, competition_id: int, team_id: int) -> None:
        with self.lock:
            group = self.teams.get(competition_id, [])
            group[:] = [team for team in group if team["id"] != team_id]

    def update_team(self, team_id: int, competition_id: int | None = None, **fields: Any) -> int:
        """Set fields on every copy of the team (one per competition, as in the recording).

        Returns how many team dicts changed, so a typo'd id fails loudly in the test.
        """
        with self.lock:
            changed = 0
            for cid, group in self.teams.items():
                if competition_id is not None and cid != competition_id:
                    continue
                for team in group:
                    if team["id"] == team_id:
                        team.update(fields)
                        changed += 1
            return changed

    def rename_team(self, team_id: int, name: str, competition_id: int | None = None) -> int:
        return self.update_team(team_id, competition_id, name=name)

    # ---- rendering -------------------------------------------------------------------------

    def render_competitions(self) -> bytes:
        with self.lock:
            return _dumps(
                {
                    "count": len(self.competitions),
                    "filters": {"client": self.client},
                    "competitions": self.competitions,
                }
            )

    def render_teams(self, key: str) -> tuple[int, bytes]:
        """(status, body) for /competitions/{key}/teams."""
        with self.lock:
            item = self.competition(key)
            competition_id = item["id"] if item is not None else _int_or_none(key)
            if competition_id is not None and competition_id in self.restricted:
                return 403, _dumps(_error(MSG_RESTRICTED, 403))
            if item is None or competition_id is None:
                return 404, _dumps(_error(MSG_NOT_FOUND, 404))
            teams = self.teams.get(competition_id, [])
            season = self.seasons.get(competition_id) or item.get("currentSeason") or {}
            start = season.get("startDate")
            return 200, _dumps(
                {
                    "count": len(teams),
                    "filters": {"season": start[:4]} if start else {},
                    "competition": {key_: item.get(key_) for key_ in _SUMMARY_KEYS},
                    "season": season,
                    "teams": teams,
                }
            )


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Faults and accounting
# --------------------------------------------------------------------------------------------

FaultKind = Literal["status", "drop", "delay", "body", "rate_limited"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build with the classmethods (or the module aliases)."""

    kind: FaultKind
    status_code: int = 200
    payload: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0

    @classmethod
    def status(
        cls,
        code: int,
        body: str | bytes | Mapping[str, Any] | list[Any] | None = None,
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer ``code``. No body: the API's JSON error shape; str/bytes: default text/html."""
        if body is None:
            try:
                reason = HTTPStatus(code).phrase
            except ValueError:
                reason = ""
            body = {"message": reason, "errorCode": code}
        if isinstance(body, (Mapping, list)):
            payload, default_type = _dumps(body), JSON_CONTENT_TYPE
        else:
            payload = body.encode("utf-8") if isinstance(body, str) else body
            default_type = "text/html; charset=utf-8"
        return cls(
            "status",
            status_code=code,
            payload=payload,
            content_type=content_type or default_type,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending a single byte of response."""
        return cls("drop")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Sleep, then answer normally (to trip the client's read timeout)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def body(
        cls,
        text: str | bytes,
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
    ) -> Fault:
        """Answer ``status`` with an arbitrary (e.g. non-JSON or truncated JSON) body."""
        payload = text.encode("utf-8") if isinstance(text, str) else text
        return cls("body", status_code=status, payload=payload, content_type=content_type)

    @classmethod
    def rate_limited(cls, wait_seconds: int) -> Fault:
        """A 429 exactly like the live one, claiming ``wait_seconds``; uses no budget."""
        return cls(
            "rate_limited",
            status_code=429,
            payload=_dumps(_rate_limit_error(wait_seconds)),
            seconds=float(wait_seconds),
        )


# Module-level spellings: ``inject(r"/teams", status(503))``.
status = Fault.status
drop = Fault.drop
delay = Fault.delay
body = Fault.body
rate_limited = Fault.rate_limited


def _rate_limit_error(wait_seconds: int) -> JsonDict:
    return _error(f"You reached your request limit. Wait {wait_seconds} seconds.", 429)


@dataclass
class RequestRecord:
    """One request the double received (also refused, faulted and dropped ones)."""

    time: float  # time.monotonic() at arrival
    path: str  # without query string, e.g. "/v4/competitions/2021/teams"
    query: str
    token: str | None  # the X-Auth-Token sent, if any
    peer_port: int  # client's source port: equal ports = one reused keep-alive connection
    status: int | None = None  # None: no response (drop) or still being served (delay)
    refused: bool = False  # answered 429 (real or injected)
    fault: FaultKind | None = None


@dataclass
class _Injection:
    pattern: re.Pattern[str]
    fault: Fault
    remaining: int


@dataclass(frozen=True)
class _Admission:
    record: RequestRecord
    refused_wait: int | None  # set: refuse with 429 claiming this wait
    fault: Fault | None
    rate_headers: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes a burst of parallel connects wait for a
    # 1 s SYN retransmit, which would look like server slowness to concurrent clients.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], double: FootballApiDouble) -> None:
        self.double = double
        # Open keep-alive connections, so stop() can unblock their handler threads.
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response sets Content-Length
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without NODELAY, Nagle holds the body's
        # tail until the client's delayed ACK (~40 ms per request), which no real server has.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # client already gone
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def do_GET(self) -> None:  # http.server dispatches on the method name
        self.server.double._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean


class FootballApiDouble:
    """The fake API on a loopback port, served from a daemon thread.

    ``api_key=None`` disables auth. The rate limit is a fixed window of ``window_seconds``
    that starts at the first admitted request; at most ``limit`` admitted requests per window.
    """

    def __init__(
        self,
        data: ApiData,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        limit: int = 10,
        window_seconds: float = 60.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.data = data
        self.api_key = api_key
        self.host = host
        self.port = port
        self.requests: list[RequestRecord] = []
        self._limit = limit
        self._window = window_seconds
        self._window_start: float | None = None
        self._used = 0
        self._injections: list[_Injection] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FootballApiDouble:
        """Bind and serve. A restart after stop() rebinds the same port, so base_url holds."""
        if self._server is not None:
            raise RuntimeError("FootballApiDouble already started")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # fast stop()
            name=f"football-api-double:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay fault
        server.shutdown()
        with server.connections_lock:
            for conn in list(server.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)  # unblock idle keep-alive readers
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FootballApiDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FootballApiDouble not started")
        return f"http://{self.host}:{self.port}/v4"

    # ---- configuration ---------------------------------------------------------------------

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def window_seconds(self) -> float:
        return self._window

    def set_limit(self, limit: int, window_seconds: float | None = None) -> None:
        """Change the limit (and window) now; the current window keeps its start and count."""
        with self._lock:
            self._limit = limit
            if window_seconds is not None:
                self._window = window_seconds

    def reset_rate_limit(self) -> None:
        """Forget the current window, e.g. between phases of one test."""
        with self._lock:
            self._window_start, self._used = None, 0

    def inject(self, path_regex: str, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` admitted requests whose path matches.

        ``path_regex`` is searched (re.search) in the path without query string, e.g.
        ``r"/competitions/2021/teams$"``. Queued faults are used in injection order.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._injections.append(_Injection(re.compile(path_regex), fault, times))

    def pending_faults(self) -> int:
        with self._lock:
            return sum(injection.remaining for injection in self._injections)

    def clear_faults(self) -> None:
        with self._lock:
            self._injections.clear()

    # ---- accounting ------------------------------------------------------------------------

    def count(self, path_prefix: str | None = None) -> int:
        """Requests received (refused ones too) whose path starts with ``path_prefix``.

        The prefix may include "/v4" or not: "/competitions/2021" and "/v4/competitions/2021"
        are the same.
        """
        with self._lock:
            if path_prefix is None:
                return len(self.requests)
            return sum(
                1
                for r in self.requests
                if r.path.startswith(path_prefix) or r.path[3:].startswith(path_prefix)
            )

    def refused_count(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.refused)

    def max_requests_in_any_window(self, window_seconds: float) -> int:
        """Most admitted (not 429) requests in any half-open interval [t, t + window_seconds).

        Stricter than the server's fixed window: a client may legally send ``limit`` requests
        at the end of one window and ``limit`` at the start of the next, which shows up here.
        """
        with self._lock:
            times = sorted(r.time for r in self.requests if not r.refused)
        best, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= window_seconds:
                first += 1
            best = max(best, last - first + 1)
        return best

    # ---- request handling ------------------------------------------------------------------

    def _seconds_to_reset(self, now: float) -> int:
        # Rounded up, so a client that waits exactly this long lands in a fresh window.
        if self._window_start is None:
            return math.ceil(self._window)
        return max(0, math.ceil(self._window_start + self._window - now))

    def _admit(self, path: str, query: str, token: str | None, peer_port: int) -> _Admission:
        now = time.monotonic()
        with self._lock:
            if self._window_start is not None and now >= self._window_start + self._window:
                self._window_start, self._used = None, 0
            record = RequestRecord(now, path, query, token, peer_port)
            self.requests.append(record)
            if self._used >= self._limit:
                wait = self._seconds_to_reset(now)
                record.refused = True
                headers = (
                    ("X-Requests-Available-Minute", "0"),
                    ("X-RequestCounter-Reset", str(wait)),
                )
                return _Admission(record, wait, None, headers)
            fault = self._take_fault(path)
            if fault is not None:
                record.fault = fault.kind
                if fault.kind == "rate_limited":
                    wait = int(fault.seconds)
                    record.refused = True
                    headers = (
                        ("X-Requests-Available-Minute", "0"),
                        ("X-RequestCounter-Reset", str(wait)),
                    )
                    return _Admission(record, wait, fault, headers)
            if self._window_start is None:
                self._window_start = now  # the window starts at its first admitted request
            self._used += 1
            headers = (
                ("X-Requests-Available-Minute", str(max(0, self._limit - self._used))),
                ("X-RequestCounter-Reset", str(self._seconds_to_reset(now))),
            )
            return _Admission(record, None, fault, headers)

    def _take_fault(self, path: str) -> Fault | None:
        for injection in self._injections:
            if injection.pattern.search(path):
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self._injections.remove(injection)
                return injection.fault
        return None

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path = split.path.rstrip("/") or "/"
        token = handler.headers.get("X-Auth-Token")
        admission = self._admit(path, split.query, token, handler.client_address[1])
        record, fault = admission.record, admission.fault

        if admission.refused_wait is not None:
            status_code, payload = 429, _dumps(_rate_limit_error(admission.refused_wait))
            self._send(handler, record, status_code, payload, JSON_CONTENT_TYPE, admission)
            return
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind in ("status", "body"):
            self._send(
                handler,
                record,
                fault.status_code,
                fault.payload,
                fault.content_type,
                admission,
                fault.headers,
            )
            return
        # A delay waits on the stop event, so stop() never waits for a sleeping handler.
        if fault is not None and fault.kind == "delay" and self._stopping.wait(fault.seconds):
            handler.close_connection = True
            return  # shutting down: don't answer

        status_code, payload = self._route(path, token)
        self._send(handler, record, status_code, payload, JSON_CONTENT_TYPE, admission)

    def _route(self, path: str, token: str | None) -> tuple[int, bytes]:
        if self.api_key is not None:
            if token is None:
                return 403, _dumps(_error(MSG_RESTRICTED, 403))
            if token != self.api_key:
                return 400, _dumps(_error(MSG_INVALID_TOKEN, 400))
        data = self.data  # read once: tests may swap the whole object
        if path == "/v4/competitions":
            return 200, data.render_competitions()
        match = _TEAMS_PATH.match(path)
        if match:
            return data.render_teams(match.group(1))
        return 404, _dumps(_error(MSG_NOT_FOUND, 404))

    def _send(
        self,
        handler: _Handler,
        record: RequestRecord,
        status_code: int,
        payload: bytes,
        content_type: str,
        admission: _Admission,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        record.status = status_code
        try:
            handler.send_response(status_code)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("X-API-Version", "v4")
            handler.send_header("X-Authenticated-Client", self.data.client)
            for name, value in (*admission.rate_headers, *extra_headers):
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            handler.close_connection = True  # client gave up (e.g. read timeout)
