"""What the double received: one record per request, and the counts tests assert on."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from test_support.api_double.faults import FaultKind


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


class RequestLog:
    """The double's ``requests``, in arrival order; its ``_lock`` guards them."""

    _lock: threading.Lock

    def __init__(self) -> None:
        self.requests: list[RequestRecord] = []

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
