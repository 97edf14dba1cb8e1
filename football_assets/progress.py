"""A refresh's progress: typed events (`Phase`, `Waiting`, `Fetched`) carried on log records,
the `RefreshObserver` a display implements, and the `RequestForecast` behind its ETA."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

ATTRIBUTE = "football_progress"
LOGGER = "football_assets.progress"
# Where the events are logged: the assets' own loggers, and the API client's, which logs
# through Dagster's (`dg.get_dagster_logger("football_assets.api")`) so runs capture it.
LOGGERS = ("football_assets", "dagster.builtin.football_assets")

WaitReason = Literal["budget", "server", "retry"]


def wait_event(seconds: float, reason: WaitReason, endpoint: str, why: str) -> dict[str, Any]:
    """`extra=` for a log record announcing a wait that is about to start."""
    return {
        ATTRIBUTE: {
            "event": "wait",
            "seconds": seconds,
            "reason": reason,
            "endpoint": endpoint,
            "why": why,
        }
    }


def fetched(
    logger: logging.Logger, asset: str, key: str, done: int, total: int, detail: str
) -> None:
    """One partition of `asset` fetched: `done` of `total` in this run."""
    logger.debug(
        "%s %d/%d: %s",
        asset,
        done,
        total,
        detail,
        extra={
            ATTRIBUTE: {
                "event": "fetched",
                "asset": asset,
                "partition": key,
                "done": done,
                "total": total,
                "detail": detail,
            }
        },
    )


def event_of(record: logging.LogRecord) -> dict[str, Any] | None:
    """The progress event a record carries, or None."""
    event = getattr(record, ATTRIBUTE, None)
    return event if isinstance(event, dict) and "event" in event else None


class Phase(StrEnum):
    """The parts of a refresh, in the order it goes through them."""

    STARTING = "starting"
    COMPETITIONS = "competitions"
    TEAMS = "teams"
    WAREHOUSE = "warehouse"
    SUMMARY = "summary"
    DONE = "done"


@dataclass(frozen=True)
class Waiting:
    """A request is about to wait `seconds`: for the budget, the server's reset, or a retry."""

    seconds: float
    reason: WaitReason
    endpoint: str
    why: str
    message: str  # the log record's text (a retry's says what failed)


@dataclass(frozen=True)
class Fetched:
    """Partition `partition` of `asset` fetched: `done` of `total` in this run."""

    asset: str
    partition: str
    done: int
    total: int
    detail: str


def typed_event(record: logging.LogRecord) -> Waiting | Fetched | None:
    """The progress event a record carries, typed; None for other records."""
    event = event_of(record)
    if event is None:
        return None
    if event["event"] == "wait":
        return Waiting(
            float(event.get("seconds", 0.0)),
            event.get("reason", "budget"),
            str(event.get("endpoint", "")),
            str(event.get("why", "")),
            record.getMessage(),
        )
    if event["event"] == "fetched":
        return Fetched(
            str(event.get("asset", "")),
            str(event.get("partition", "")),
            int(event.get("done", 0)),
            int(event.get("total", 0)),
            str(event.get("detail", "")),
        )
    return None


class RefreshObserver(Protocol):
    """What follows a refresh as it happens (the CLI's displays): `refresh.refresh` reports the
    phases, the skip and the failure; the runs' progress records report waits and fetches."""

    def phase(self, phase: Phase, total: int | None = None) -> None:
        """`phase` begins; for TEAMS, `total` competitions are to be fetched."""

    def waiting(self, wait: Waiting) -> None: ...

    def fetched(self, fetched: Fetched) -> None: ...

    def skipped(self, reason: str) -> None:
        """The tables and the report were not rebuilt, and why."""

    def failed(self, step: str, message: str) -> None:
        """A run failed at `step`; `message` is the one line."""


@dataclass
class RequestForecast:
    """When the remaining requests of a refresh will have been sent, given the request budget.

    The budget admits `limit` requests in any `window_seconds` (plus `margin`), so request i+limit
    leaves no earlier than a window after request i; between requests the refresh also spends
    its own time (parsing, bookkeeping), measured as the median gap between requests that did
    not wait. The forecast replays that rule from the requests seen so far. `limit=None` is the
    offline snapshot: no budget, only the refresh's own pace.
    """

    limit: int | None
    window_seconds: float
    margin: float = 0.0
    sent: deque[float] = field(default_factory=deque)  # monotonic times, at most `limit` kept
    _gaps: list[float] = field(default_factory=list)
    _last: float | None = None
    _waited: bool = False

    def request_sent(self, at: float) -> None:
        if self._last is not None and not self._waited:
            self._gaps.append(at - self._last)
            del self._gaps[:-50]  # the recent pace is the one that matters
        self._last, self._waited = at, False
        self.sent.append(at)
        while self.limit is not None and len(self.sent) > self.limit:
            self.sent.popleft()

    def waited(self) -> None:
        """The next request waits for the budget: its gap is not the refresh's own pace."""
        self._waited = True

    def pace(self) -> float:
        gaps = sorted(self._gaps)
        return gaps[len(gaps) // 2] if gaps else 0.0

    def finish_time(self, remaining: int, now: float, not_before: float = 0.0) -> float:
        """The monotonic time the last of `remaining` requests leaves (now when none remain).
        `not_before`: a wait in progress ends then, so nothing leaves earlier."""
        if remaining <= 0:
            return now
        pace = self.pace()
        interval = self.window_seconds + self.margin
        window = deque(self.sent)
        at = max(now, not_before)
        previous = self._last
        for _ in range(remaining):
            if previous is not None:
                at = max(at, previous + pace)
            if self.limit is not None and len(window) >= self.limit:
                at = max(at, window[0] + interval)
                window.popleft()
            window.append(at)
            previous = at
        return at
