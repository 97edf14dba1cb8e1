"""The football-data.org API: a live HTTP client and a bundled offline snapshot, one interface.

This module knows HTTP, auth, the rate budget and retries; it knows nothing of assets or SQL.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import requests
from pydantic import PrivateAttr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from football_assets import settings
from football_assets.resources.rate_limit import SharedRateLimiter

log = logging.getLogger("football_assets.api")

SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "snapshot"
SNAPSHOT_DATE = "2025-01-31"

_WAIT_IN_MESSAGE = re.compile(r"Wait (\d+) seconds", re.IGNORECASE)


class FootballDataError(Exception):
    """An API failure a user must act on; str() is one line naming endpoint, status and remedy."""


class FootballDataPermanentError(FootballDataError):
    """Retrying cannot help (bad key, outside the plan, unknown resource, bad payload)."""


class FootballDataTransientError(FootballDataError):
    """The network or the server failed in a way a later attempt may not."""


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
        return meta


def _explain(endpoint: str, status: int, message: str) -> str:
    where = f"GET {endpoint} returned HTTP {status}"
    said = f": {message}" if message else ""
    if status == 400 and "token" in message.lower():
        return f"{where}{said} Check FOOTBALL_DATA_API_KEY (or unset it to run on the snapshot)."
    if status == 403:
        competition = re.search(r"/competitions/([^/]+)", endpoint)
        subject = f"competition {competition.group(1)}" if competition else "this resource"
        return (
            f"{where}{said} Your plan does not include {subject}; upgrade the plan or leave it out."
        )
    if status == 404:
        return f"{where}{said} The API does not know this resource; check the competition id."
    return f"{where}{said}"


def _api_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message).strip() if message else ""


def _int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class _ServerBudget:
    """The server's own accounting, shared by the threads of one client."""

    available: int | None = None
    reset_at: float = 0.0  # monotonic time the server's window resets
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, available: int | None, reset_seconds: int | None) -> None:
        with self.lock:
            self.available = available
            if reset_seconds is not None:
                self.reset_at = time.monotonic() + reset_seconds

    def wait_needed(self) -> float:
        with self.lock:
            if self.available is not None and self.available <= 0:
                return max(0.0, self.reset_at - time.monotonic())
            return 0.0

    def spend(self) -> None:
        with self.lock:
            if self.available is not None:
                self.available -= 1


class FootballDataClient:
    """HTTP client for football-data.org v4: one keep-alive session, rate-limited, retried."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        requests_per_minute: int = settings.DEFAULT_REQUESTS_PER_MINUTE,
        rate_window_seconds: float = 60.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_retry_seconds: float = 300.0,
        limiter_path: Path | None = None,
        log_waits: logging.Logger | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if api_key:
            self._session.headers["X-Auth-Token"] = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._max_retry_seconds = max_retry_seconds
        self._limiter = SharedRateLimiter(
            requests_per_minute, rate_window_seconds, path=limiter_path, key=self.base_url
        )
        self._window = rate_window_seconds
        self._budget = _ServerBudget()
        self._log = log_waits or log

    def close(self) -> None:
        self._session.close()
        self._limiter.close()

    def get(self, endpoint: str) -> ApiResponse:
        """GET `endpoint` within the budget, retrying transient failures; raises one-line errors."""
        retrying = Retrying(
            retry=retry_if_exception_type(FootballDataTransientError),
            wait=self._wait_before_retry,
            stop=stop_after_delay(self._max_retry_seconds),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                response = self._get_once(endpoint)
                return ApiResponse(
                    **{**response.__dict__, "attempts": attempt.retry_state.attempt_number}
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_before_retry(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        server_wait = getattr(error, "retry_after", None)
        if server_wait is not None:
            self._log.info("Rate limited by the API: waiting %.0f s as it asked.", server_wait)
            return float(server_wait)
        backoff = wait_exponential_jitter(initial=1, max=30, jitter=1)(state)
        self._log.info("%s; retrying in %.1f s (attempt %d).", error, backoff, state.attempt_number)
        return backoff

    def _get_once(self, endpoint: str) -> ApiResponse:
        server_wait = self._budget.wait_needed()
        if server_wait > 0:
            self._log.info(
                "The API says no requests are left in its window: waiting %.1f s for its reset.",
                server_wait,
            )
            time.sleep(server_wait)
        waited = self._limiter.acquire()
        if waited > 0.05:
            self._log.info(
                "Rate budget of the configured limit spent: waited %.1f s before GET %s.",
                waited,
                endpoint,
            )
        url = f"{self.base_url}{endpoint}"
        try:
            response = self._session.get(url, timeout=self._timeout)
        except requests.Timeout:
            raise FootballDataTransientError(
                f"GET {endpoint} timed out after {self._timeout[1]:.0f} s"
            ) from None
        except requests.ConnectionError as exc:
            reason = type(exc.__cause__ or exc).__name__
            raise FootballDataTransientError(
                f"GET {endpoint} failed to connect to {self.base_url} ({reason}); "
                "is the API reachable?"
            ) from None
        self._budget.spend()
        available = _int_header(response, "X-Requests-Available-Minute")
        reset = _int_header(response, "X-RequestCounter-Reset")
        self._budget.update(available, reset)
        status = response.status_code
        message = _api_message(response)
        if status == 429:
            found = _WAIT_IN_MESSAGE.search(message)
            wait = int(found.group(1)) if found else (reset if reset is not None else self._window)
            error = FootballDataTransientError(f"GET {endpoint} returned HTTP 429: {message}")
            error.retry_after = max(wait, 1)  # type: ignore[attr-defined]
            raise error
        if status >= 500:
            raise FootballDataTransientError(_explain(endpoint, status, message))
        if status != 200:
            raise FootballDataPermanentError(_explain(endpoint, status, message))
        try:
            payload = response.json()
        except ValueError:
            raise FootballDataPermanentError(
                f"GET {endpoint} returned HTTP 200 but its body is not JSON "
                f"(Content-Type {response.headers.get('Content-Type', 'missing')!r})."
            ) from None
        if not isinstance(payload, dict):
            raise FootballDataPermanentError(
                f"GET {endpoint} returned HTTP 200 but its body is a JSON "
                f"{type(payload).__name__}, not an object."
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

    api_key: str
    base_url: str = settings.DEFAULT_API_URL
    requests_per_minute: int = settings.DEFAULT_REQUESTS_PER_MINUTE
    rate_window_seconds: float = 60.0
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_retry_seconds: float = 300.0
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
