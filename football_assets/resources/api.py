"""The football-data.org API: a live HTTP client and a bundled offline snapshot, one interface.

This module knows HTTP, auth, the rate budget and retries; it knows nothing of assets or SQL.
"""

from __future__ import annotations

import json
import logging
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import requests
from pydantic import Field, PrivateAttr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from football_assets import settings
from football_assets.resources.rate_limit import SharedRateLimiter

# Captured into the Dagster event log inside a step; a plain Python logger elsewhere.
log = dg.get_dagster_logger("football_assets.api")

SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "snapshot"
SNAPSHOT_DATE = "2025-01-31"

_WAIT_IN_MESSAGE = re.compile(r"Wait (\d+) seconds", re.IGNORECASE)
_COMPETITION = re.compile(r"/competitions/([^/]+)")
# Worth another attempt: the server or something in front of it is struggling.
_TRANSIENT_STATUSES = frozenset({408, 425, 500, 502, 503, 504})


class FootballDataError(Exception):
    """An API failure a user must act on; str() is one line naming endpoint, status and remedy."""


class FootballDataPermanentError(FootballDataError):
    """Retrying cannot help (bad key, outside the plan, unknown resource, bad payload)."""


class FootballDataTransientError(FootballDataError):
    """The network or the server failed in a way a later attempt may not."""


class FootballDataRateLimited(FootballDataTransientError):
    """HTTP 429: retry after `wait` seconds, as the server said."""

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class ApiResponse:
    """One answer of the API, with what lineage needs to know about where it came from."""

    endpoint: str  # path below the base URL, e.g. "/competitions/2021/teams"
    url: str  # full URL, never carries the key (it travels in a header)
    status: int
    payload: dict[str, Any]
    size_bytes: int
    fetched_at: datetime
    source: str  # "live" or "snapshot"
    requests_available: int | None = None  # the server's X-Requests-Available-Minute
    reset_seconds: int | None = None  # the server's X-RequestCounter-Reset
    snapshot_date: str | None = None
    attempts: int = 1
    rate_wait_seconds: float = 0.0  # time spent waiting for the request budget

    def metadata(self) -> dict[str, Any]:
        """Materialization metadata: provenance and the budget left, never the key."""
        meta: dict[str, Any] = {
            "source": self.source,
            "url": dg.MetadataValue.url(self.url) if self.source == "live" else self.url,
            "http_status": self.status,
            "bytes": self.size_bytes,
            "fetched_at": self.fetched_at.isoformat(),
            "attempts": self.attempts,
        }
        if self.snapshot_date:
            meta["snapshot_date"] = self.snapshot_date
        if self.requests_available is not None:
            meta["api_requests_available_minute"] = self.requests_available
        if self.reset_seconds is not None:
            meta["api_counter_reset_seconds"] = self.reset_seconds
        if self.source == "live":
            meta["rate_limit_wait_seconds"] = round(self.rate_wait_seconds, 2)
        return meta


def _competition(endpoint: str) -> str | None:
    found = _COMPETITION.search(endpoint)
    return found.group(1) if found else None


def _explain(endpoint: str, status: int, message: str) -> str:
    where = f"GET {endpoint} returned HTTP {status}"
    said = f": {message.rstrip('.')}." if message else "."
    competition = _competition(endpoint)
    if status == 400 and "token" in message.lower():
        return f"{where}{said} Check FOOTBALL_DATA_API_KEY (or unset it to run on the snapshot)."
    if status in (401, 403):
        subject = f"competition {competition}" if competition else "this resource"
        return (
            f"{where}{said} Your plan (FOOTBALL_DATA_API_KEY) does not include {subject}; "
            "upgrade the plan at football-data.org or use a key that has it."
        )
    if status == 404:
        subject = f"competition {competition}" if competition else "this resource"
        return f"{where}{said} The API does not know {subject}; check the id."
    return f"{where}{said}"


def retry_after_429(message: str, reset_header: int | None, window_seconds: float) -> float:
    """How long a 429 asks to wait: the body's "Wait N seconds", else X-RequestCounter-Reset,
    else a whole window (the API sends no Retry-After)."""
    found = _WAIT_IN_MESSAGE.search(message)
    if found:
        return float(found.group(1))
    return float(reset_header) if reset_header is not None else window_seconds


def _api_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(message).split()) if message else ""  # one line, whatever it sent


def _int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class FootballDataClient:
    """HTTP client for football-data.org v4: one keep-alive session, rate-limited, retried.

    Safe to share between threads: the budget lives in SQLite (per-call connections and a
    file lock), and requests' Session pools its connections.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        requests_per_minute: int = settings.DEFAULT_REQUESTS_PER_MINUTE,
        rate_window_seconds: float = 60.0,
        connect_timeout: float = settings.DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = settings.DEFAULT_READ_TIMEOUT,
        max_retry_seconds: float = settings.DEFAULT_MAX_RETRY_SECONDS,
        backoff_seconds: float = 1.0,
        limiter_path: Path | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or None
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if api_key:
            self._session.headers["X-Auth-Token"] = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._max_retry_seconds = max_retry_seconds
        # Exponential with jitter (b, 2b, 4b ... up to 30 s, plus up to b at random), so runs that
        # failed together do not retry in lockstep.
        self._backoff = wait_exponential(multiplier=backoff_seconds, max=30) + wait_random(
            0, backoff_seconds
        )
        self._limiter = SharedRateLimiter(
            requests_per_minute, rate_window_seconds, path=limiter_path, key=self.base_url
        )
        self._log = logger or log

    def close(self) -> None:
        self._session.close()
        self._limiter.close()

    def get(self, endpoint: str) -> ApiResponse:
        """GET `endpoint` within the budget, retrying transient failures; raises one-line errors.

        The retries are bounded by `max_retry_seconds` of failing and backing off; time spent
        waiting for the rate budget is pacing, not failing, so it does not count.
        """
        paced = 0.0

        def out_of_time(state: RetryCallState) -> bool:
            failing = state.seconds_since_start or 0.0
            return failing - paced + state.upcoming_sleep >= self._max_retry_seconds

        retrying = Retrying(
            retry=retry_if_exception_type(FootballDataTransientError),
            wait=self._wait_before_retry,
            stop=out_of_time,
            before_sleep=self._log_retry,
            reraise=True,
        )
        started = time.monotonic()
        try:
            for attempt in retrying:
                with attempt:
                    paced += self._pace(endpoint)
                    response = self._get_once(endpoint)
                    return replace(
                        response,
                        attempts=attempt.retry_state.attempt_number,
                        rate_wait_seconds=paced,
                    )
        except FootballDataTransientError as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise FootballDataTransientError(
                f"{exc} Gave up after {attempts} attempt{'s' if attempts > 1 else ''} in "
                f"{time.monotonic() - started:.0f} s (FOOTBALL_DATA_MAX_RETRY_SECONDS="
                f"{self._max_retry_seconds:g}); re-run when the API is reachable."
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_before_retry(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, FootballDataRateLimited):
            return error.wait
        return self._backoff(state)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        how = (
            "as the API asked"
            if isinstance(error, FootballDataRateLimited)
            else "backing off with jitter"
        )
        self._log.info(
            "%s Waiting %s s (%s), then attempt %d.",
            error,
            _seconds(state.upcoming_sleep),
            how,
            state.attempt_number + 1,
        )

    def _pace(self, endpoint: str) -> float:
        """Wait until a request may be sent; return the seconds waited. Each wait is logged
        once, before it starts, with its reason."""
        waited = 0.0
        # The server's word first, then the configured budget: the slot is stamped last, just
        # before the request leaves, so the sliding window matches what the server counts.
        while (wait := self._limiter.server_wait()) > 0:
            self._log.log(
                _wait_level(wait),
                "Waiting %s s before GET %s: the API said no requests remain until its "
                "counter resets.",
                _seconds(wait),
                endpoint,
            )
            time.sleep(wait)
            waited += wait

        def tell(wait: float) -> None:
            self._log.log(
                _wait_level(wait),
                "Waiting %s s before GET %s: the request budget (%d per %g s, shared by every "
                "process on this machine) is spent.",
                _seconds(wait),
                endpoint,
                self._limiter.limit,
                self._limiter.window_seconds,
            )

        return waited + self._limiter.acquire(on_wait=tell)

    def _scrub(self, text: str) -> str:
        # Defence in depth: whatever a server or proxy echoes back, the key never leaves here.
        return text.replace(self._api_key, "[FOOTBALL_DATA_API_KEY]") if self._api_key else text

    def _get_once(self, endpoint: str) -> ApiResponse:
        url = f"{self.base_url}{endpoint}"
        sent_at = time.time()
        try:
            # No redirects: requests would forward X-Auth-Token to wherever they point.
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False)
        except requests.ConnectTimeout:
            raise FootballDataTransientError(
                f"GET {endpoint}: no connection to {self.base_url} within "
                f"{self._timeout[0]:g} s (FOOTBALL_DATA_CONNECT_TIMEOUT)."
            ) from None
        except requests.Timeout:
            raise FootballDataTransientError(
                f"GET {endpoint}: no answer within {self._timeout[1]:g} s "
                "(FOOTBALL_DATA_READ_TIMEOUT)."
            ) from None
        except requests.ConnectionError as exc:
            reason = _root_cause(exc)
            raise FootballDataTransientError(
                self._scrub(
                    f"GET {endpoint}: the connection to {self.base_url} failed or was dropped "
                    f"({reason})."
                )
            ) from None
        except requests.RequestException as exc:
            raise FootballDataTransientError(
                self._scrub(f"GET {endpoint} failed ({type(exc).__name__}).")
            ) from None

        available = _int_header(response, "X-Requests-Available-Minute")
        reset = _int_header(response, "X-RequestCounter-Reset")
        status = response.status_code
        message = self._scrub(_api_message(response))
        if status == 429:
            wait = retry_after_429(message, reset, self._limiter.window_seconds)
            # Every process on the machine holds off until then, not only this one.
            self._limiter.server_said(sent_at, 0, wait)
            raise FootballDataRateLimited(
                _explain(endpoint, status, message), wait=wait + self._limiter.margin
            )
        self._limiter.server_said(sent_at, available, reset)
        if status in _TRANSIENT_STATUSES:
            raise FootballDataTransientError(_explain(endpoint, status, message))
        if 300 <= status < 400:
            raise FootballDataPermanentError(
                self._scrub(
                    f"GET {endpoint} returned HTTP {status}, a redirect to "
                    f"{response.headers.get('Location', 'nowhere')!r}, which is not followed; "
                    "check FOOTBALL_DATA_API_URL."
                )
            )
        if status != 200:
            raise FootballDataPermanentError(_explain(endpoint, status, message))
        try:
            payload = response.json()
        except ValueError:
            # An HTML error page or a cut-off body from something between us and the API:
            # retried, as the next answer may well be whole.
            raise FootballDataTransientError(
                f"GET {endpoint} returned HTTP 200 but its body is not JSON "
                f"(Content-Type {response.headers.get('Content-Type', 'missing')!r}, "
                f"{len(response.content)} bytes){_partition(endpoint)}."
            ) from None
        if not isinstance(payload, dict):
            raise FootballDataPermanentError(
                f"GET {endpoint} returned HTTP 200 but its body is a JSON "
                f"{type(payload).__name__}, not an object{_partition(endpoint)}."
            )
        return ApiResponse(
            endpoint=endpoint,
            url=url,
            status=status,
            payload=payload,
            size_bytes=len(response.content),
            fetched_at=datetime.now(UTC),
            source="live",
            requests_available=available,
            reset_seconds=reset,
        )


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 0.1 else f"{value:.2f}"


def _wait_level(seconds: float) -> int:
    # Once a sliding window is full, slots free up at the pace the requests were sent: the
    # waits in between last milliseconds and would only bury the one that matters.
    return logging.INFO if seconds >= 0.1 else logging.DEBUG


def _partition(endpoint: str) -> str:
    competition = _competition(endpoint)
    return f" (raw_teams partition {competition})" if competition else ""


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's class name, e.g. ConnectionRefusedError or RemoteDisconnected:
    short, and unlike the wrappers' messages it never carries a URL."""
    for _ in range(20):  # requests wraps urllib3, which wraps http.client and the socket
        inner = exc.__cause__ or next(
            (arg for arg in exc.args if isinstance(arg, BaseException)), exc.__context__
        )
        if inner is None:
            break
        exc = inner
    return type(exc).__name__


class FootballDataApi(dg.ConfigurableResource, ABC):
    """What the ingestion assets need from football-data.org, live or from the snapshot."""

    @property
    @abstractmethod
    def source(self) -> str: ...

    @abstractmethod
    def get(self, endpoint: str) -> ApiResponse: ...

    def fetch_competitions(self) -> ApiResponse:
        return self.get("/competitions")

    def fetch_teams(self, competition_id: str) -> ApiResponse:
        return self.get(f"/competitions/{competition_id}/teams")


class LiveFootballDataApi(FootballDataApi):
    """The real API. The key comes from `dg.EnvVar("FOOTBALL_DATA_API_KEY")` and is sent only
    in the X-Auth-Token header, so it never reaches a URL, a log line or metadata."""

    # repr=False: a resource printed in a traceback or a debugger does not show the key.
    api_key: str = Field(repr=False)
    base_url: str = settings.DEFAULT_API_URL
    requests_per_minute: int = settings.DEFAULT_REQUESTS_PER_MINUTE
    rate_window_seconds: float = 60.0
    connect_timeout_seconds: float = settings.DEFAULT_CONNECT_TIMEOUT
    read_timeout_seconds: float = settings.DEFAULT_READ_TIMEOUT
    max_retry_seconds: float = settings.DEFAULT_MAX_RETRY_SECONDS
    backoff_seconds: float = 1.0  # first retry after 1-2 s, then doubling (at most 30 s)
    limiter_path: str | None = None

    _client: FootballDataClient | None = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        return "live"

    def _get_client(self) -> FootballDataClient:
        if self._client is None:
            limiter_path = Path(self.limiter_path) if self.limiter_path else None
            self._client = FootballDataClient(
                base_url=self.base_url,
                api_key=self.api_key,
                requests_per_minute=self.requests_per_minute,
                rate_window_seconds=self.rate_window_seconds,
                connect_timeout=self.connect_timeout_seconds,
                read_timeout=self.read_timeout_seconds,
                max_retry_seconds=self.max_retry_seconds,
                backoff_seconds=self.backoff_seconds,
                limiter_path=limiter_path,
            )
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get(self, endpoint: str) -> ApiResponse:
        return self._get_client().get(endpoint)


class SnapshotFootballDataApi(FootballDataApi):
    """Real API responses recorded on 2025-01-31 (free tier), bundled with the package."""

    snapshot_dir: str = str(SNAPSHOT_DIR)
    snapshot_date: str = SNAPSHOT_DATE

    @property
    def source(self) -> str:
        return "snapshot"

    def get(self, endpoint: str) -> ApiResponse:
        if endpoint == "/competitions":
            name = "competitions.json"
        else:
            found = re.fullmatch(r"/competitions/(\d+)/teams", endpoint)
            if not found:
                raise FootballDataPermanentError(f"The snapshot has no answer for GET {endpoint}.")
            name = f"teams_{found.group(1)}.json"
        path = Path(self.snapshot_dir) / name
        if not path.exists():
            raise FootballDataPermanentError(
                f"GET {endpoint}: the snapshot of {self.snapshot_date} has no {name}; "
                "set FOOTBALL_DATA_API_KEY to fetch it live."
            )
        raw = path.read_bytes()
        return ApiResponse(
            endpoint=endpoint,
            url=f"snapshot://{self.snapshot_date}/{name}",
            status=200,
            payload=json.loads(raw),
            size_bytes=len(raw),
            fetched_at=datetime.now(UTC),
            source="snapshot",
            snapshot_date=self.snapshot_date,
        )
