"""The live API's fixed-window rate limit, and the headers that say what is left of it."""

from __future__ import annotations

import math
import threading

RateHeaders = tuple[tuple[str, str], ...]


def refused_headers(wait_seconds: int) -> RateHeaders:
    return (("X-Requests-Available-Minute", "0"), ("X-RequestCounter-Reset", str(wait_seconds)))


class FixedWindow:
    """At most ``limit`` admitted requests per window of ``window_seconds``; a window starts at
    its first admitted request. The double's ``_lock`` guards the state."""

    _lock: threading.Lock

    def __init__(self, limit: int, window_seconds: float) -> None:
        self._limit = limit
        self._window = window_seconds
        self._window_start: float | None = None
        self._used = 0

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

    def _seconds_to_reset(self, now: float) -> int:
        # Rounded up, so a client that waits exactly this long lands in a fresh window.
        if self._window_start is None:
            return math.ceil(self._window)
        return max(0, math.ceil(self._window_start + self._window - now))

    def _spent_wait(self, now: float) -> int | None:
        """Seconds until the next window if this one is spent, else None. Caller holds _lock."""
        if self._window_start is not None and now >= self._window_start + self._window:
            self._window_start, self._used = None, 0
        return self._seconds_to_reset(now) if self._used >= self._limit else None

    def _spend(self, now: float) -> RateHeaders:
        """Count one admitted request; the headers its answer carries. Caller holds _lock."""
        if self._window_start is None:
            self._window_start = now
        self._used += 1
        return (
            ("X-Requests-Available-Minute", str(max(0, self._limit - self._used))),
            ("X-RequestCounter-Reset", str(self._seconds_to_reset(now))),
        )
