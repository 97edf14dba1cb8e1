"""What football-data.org answers: one answer with its provenance (`ApiResponse`), and its
refusals as errors whose one line names the endpoint, the status and what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    import requests

_WAIT_IN_MESSAGE = re.compile(r"Wait (\d+) seconds", re.IGNORECASE)
_COMPETITION = re.compile(r"/competitions/([^/]+)")


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


def competition_of(endpoint: str) -> str | None:
    found = _COMPETITION.search(endpoint)
    return found.group(1) if found else None


def explain(endpoint: str, status: int, message: str) -> str:
    where = f"GET {endpoint} returned HTTP {status}"
    said = f": {message.rstrip('.')}." if message else "."
    competition = competition_of(endpoint)
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


def api_message(response: requests.Response) -> str:
    """The body's "message", on one line whatever the server sent; "" when there is none."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(message).split()) if message else ""


def int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def partition_of(endpoint: str) -> str:
    """ " (raw_teams partition 2021)" for a teams endpoint, for error lines; else ""."""
    competition = competition_of(endpoint)
    return f" (raw_teams partition {competition})" if competition else ""


def root_cause(exc: BaseException) -> str:
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
