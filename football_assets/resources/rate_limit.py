"""The request budget shared by every process that talks to the API from this machine.

UI backfills, the daemon and CLI runs each start their own processes; an in-process counter
would let each of them spend the whole budget. One SQLite file beside the Dagster instance
holds two things all of them consult:

- the configured budget (FOOTBALL_DATA_REQUESTS_PER_MINUTE): pyrate-limiter's sliding-window
  log in a SQLiteBucket guarded by a file lock. A sliding window is stricter than the server's
  fixed one (every fixed window is also a sliding one), so staying inside it never trips the
  server, provided a request reaches the server about when its slot was stamped: hence a small
  safety margin on the window, covering the time between the stamp and the server's count.
- the server's own word (X-Requests-Available-Minute / X-RequestCounter-Reset), the latest any
  process heard: when it says nothing remains, every process waits for its reset. This is what
  keeps the client right when the server's limit or window is tighter than the configured one.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from pyrate_limiter import Limiter, Rate, SQLiteBucket

from football_assets import settings

_ITEM = "request"


def safety_margin(window_seconds: float) -> float:
    """Seconds added to every rate wait: 5 % of the window, at least 0.1 s, at most 1 s.

    Covers the time from stamping a slot to the server counting the request (a loaded machine,
    a slow connect) and a reset header the server may round down.
    """
    return min(1.0, max(0.1, 0.05 * window_seconds))


class SharedRateLimiter:
    """At most `limit` requests per `window_seconds` (plus margin), across processes sharing
    `path`, and never while the server says its own budget is spent."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        path: Path | None = None,
        key: str = "football-data",
    ) -> None:
        if limit < 1:
            raise ValueError("the request limit must be at least 1 per window")
        directory = path or settings.state_dir()
        directory.mkdir(parents=True, exist_ok=True)
        db_path = directory / "rate_limit.sqlite"
        self.limit = limit
        self.window_seconds = window_seconds
        self.margin = safety_margin(window_seconds)
        # One log per API and window. The limit is left out on purpose: processes configured
        # with different limits still see each other's requests, each keeping to its own limit.
        digest = hashlib.sha1(f"{key}|{window_seconds}".encode()).hexdigest()[:12]
        self._interval_ms = round((window_seconds + self.margin) * 1000)
        self._bucket = SQLiteBucket.init_from_file(
            [Rate(limit, self._interval_ms)],
            table=f"budget_{digest}",
            db_path=str(db_path),
            use_file_lock=True,
        )
        self._limiter = Limiter(self._bucket)
        self._server = ServerBudget(db_path, key=key, margin=self.margin, window=window_seconds)

    def acquire(self, on_wait: Callable[[float], None] | None = None) -> float:
        """Take a slot of the configured budget, waiting for one; return the seconds waited.

        `on_wait(seconds)` is told, before the wait starts, how long it should be.
        """
        started = time.monotonic()
        expected = self._seconds_until_slot()
        if expected > 0 and on_wait is not None:
            on_wait(expected)
        # pyrate's blocking acquire does the waiting (and re-checks, so another process taking
        # the slot first only makes the wait longer). Non-blocking attempts are not an option:
        # with a file lock they fail in pyrate-limiter 4.5 + filelock 4 (TypeError).
        self._limiter.try_acquire(_ITEM, blocking=True)
        return time.monotonic() - started

    def _seconds_until_slot(self) -> float:
        """0.0 when the window has room, else when its `limit`-th newest stamp expires (the
        sliding log frees a slot then). A prediction for the log: acquire() decides."""
        blocking = self._bucket.peek(self.limit - 1)
        if blocking is None:
            return 0.0
        free_at_ms = blocking.timestamp + self._interval_ms
        return max(0.0, (free_at_ms - time.time_ns() // 1_000_000) / 1000)

    def server_wait(self) -> float:
        """Reserve one request of what the server last said remains; 0.0 when one was (or
        nothing is known), else the seconds until the server's counter resets."""
        return self._server.reserve()

    def server_said(
        self, sent_at: float, available: int | None, reset_seconds: float | None
    ) -> None:
        """Record the server's accounting from an answer to a request sent at `sent_at`."""
        self._server.record(sent_at, available, reset_seconds)

    def close(self) -> None:
        self._limiter.close()  # also closes the bucket's SQLite connection


class ServerBudget:
    """The server's last word on its budget, in a table every process on the machine shares.

    A row holds what remains and when the server's window resets (wall clock, so every process
    agrees). Each request takes one from it before it is sent, so two processes don't both
    spend the last one; once the reset time passes the row is forgotten, since the server then
    starts a fresh window.
    """

    def __init__(self, db_path: Path, *, key: str, margin: float, window: float) -> None:
        self._db_path = db_path
        self._key = key
        self._margin = margin
        self._window = window
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS server_budget (api TEXT PRIMARY KEY, "
                "available INTEGER NOT NULL, reset_at REAL NOT NULL, sent_at REAL NOT NULL)"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: threads never share one, and BEGIN IMMEDIATE serializes the
        # read-modify-write across processes (SQLite waits up to `timeout` for the lock).
        with closing(sqlite3.connect(self._db_path, timeout=30, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def reserve(self) -> float:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT available, reset_at FROM server_budget WHERE api = ?", (self._key,)
            ).fetchone()
            if row is None:
                return 0.0
            available, reset_at = row
            now = time.time()
            if now >= reset_at:
                conn.execute("DELETE FROM server_budget WHERE api = ?", (self._key,))
                return 0.0
            if available <= 0:
                return reset_at - now
            conn.execute(
                "UPDATE server_budget SET available = available - 1 WHERE api = ?", (self._key,)
            )
            return 0.0

    def record(self, sent_at: float, available: int | None, reset_seconds: float | None) -> None:
        if available is None:
            return
        if reset_seconds is None:
            # No reset header: only a spent budget matters, and a window always ends by then.
            if available > 0:
                return
            reset_seconds = self._window
        reset_at = time.time() + reset_seconds + self._margin
        with self._transaction() as conn:
            # Answers can arrive out of order; the one to the latest request is the freshest.
            conn.execute(
                "INSERT INTO server_budget (api, available, reset_at, sent_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (api) DO UPDATE SET "
                "available = excluded.available, reset_at = excluded.reset_at, "
                "sent_at = excluded.sent_at WHERE excluded.sent_at >= server_budget.sent_at",
                (self._key, available, reset_at, sent_at),
            )
