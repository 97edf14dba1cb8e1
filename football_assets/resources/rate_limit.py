"""A request budget shared by every process that talks to the API from this machine.

UI backfills, the daemon and CLI runs each start their own processes; an in-process counter
would let each of them spend the whole budget. pyrate-limiter's SQLite bucket, guarded by a
file lock, keeps one sliding-window log of requests that all of them consult.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

from football_assets import settings


class SharedRateLimiter:
    """At most `limit` acquisitions per `window_seconds`, across processes sharing `path`."""

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
        # One table per endpoint and rate, so a test server and the real API never share a log.
        digest = hashlib.sha1(f"{key}|{limit}|{window_seconds}".encode()).hexdigest()[:12]
        window_ms = max(1, int(window_seconds * Duration.SECOND))
        self._bucket = SQLiteBucket.init_from_file(
            [Rate(limit, window_ms)],
            table=f"budget_{digest}",
            db_path=str(directory / "rate_limit.sqlite"),
            use_file_lock=True,
        )
        self._limiter = Limiter(self._bucket)

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds spent waiting."""
        started = time.monotonic()
        self._limiter.try_acquire("request", blocking=True)
        return time.monotonic() - started

    def close(self) -> None:
        self._limiter.close()  # also closes the bucket's SQLite connection
