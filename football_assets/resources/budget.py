"""The request budget of one API key, shared by every process that spends it, wherever it runs.

The server counts per key, so the budget is per API and key, not per DAGSTER_HOME. It holds a
sliding-window log of the configured budget, stricter than the server's fixed window (every
fixed window is also a sliding one), so staying inside it never trips the server, given a small
safety margin for the time from stamp to server; and the server's word (X-Requests-Available-
Minute / X-RequestCounter-Reset), the freshest any process heard (by `sent_at`): each request
takes one of what remains and, when none does (as after a 429), every process waits for the
reset. That keeps the client right when the server is tighter than the configuration.

SQLite, one machine: a file per API and key in a per-user state folder (mode 0700), named by a
truncated SHA-256 of base URL and key, so nothing reversible to the key is on disk; the log is
pyrate-limiter's SQLiteBucket under a file lock, blocking (4.5.1's non-blocking acquire crashes
with filelock 4).

PostgreSQL, hosts sharing no files (ECS tasks): not pyrate's PostgresBucket. Its check-and-insert
is atomic (EXCLUSIVE table lock), but its stamps are TIMESTAMP WITHOUT TIME ZONE read through each
session's TimeZone, so clients in different TimeZones misread each other's by hours (a UTC and a
New York session sharing 5 per second admitted 9 in 20 ms); its NOWAIT lock turns contention
into polling; it has no schema nor room for the server's word. Here each budget transaction
holds an advisory lock per budget and stamps with the database's clock.

Size: two backends of one budget (about 390 lines; where the SQLite file lives, how it is
checked and read without writing, is budget_store.py). They share the server's-word bookkeeping,
written once in the base class; split into files, each backend would import the base back.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pyrate_limiter import Limiter, Rate, RateItem, SQLiteBucket

from football_assets.redaction import SecretScrubber, database_url_secrets
from football_assets.resources.budget_store import (
    BudgetStoreError,
    budget_file,
    check_folder,
    file_error,
    prepare_file,
)
from football_assets.resources.budget_store import budget_id as _budget_id

__all__ = ["BudgetStoreError", "RequestBudget", "budget_file", "open_budget", "safety_margin"]


def safety_margin(window_seconds: float) -> float:
    """Seconds added to every rate wait: 5 % of the window, at least 0.1 s, at most 1 s.

    Covers the time from stamping a slot to the server counting the request (a loaded machine,
    a slow connect) and a reset header the server may round down.
    """
    return min(1.0, max(0.1, 0.05 * window_seconds))


@dataclass
class _Tx:
    """A transaction excluding every other one of the budget: `run(query, params)` with `?`
    placeholders, and the budget's clock (epoch seconds) read once it holds the budget."""

    run: Callable[[str, tuple[Any, ...]], Any]
    now: float

    def row(self, query: str, *params: Any) -> Any:
        return self.run(query, params).fetchone()


class RequestBudget(ABC):
    """At most `limit` requests per `window_seconds` (plus margin) across every process that
    shares the budget, and none while the server says its own budget is spent."""

    def __init__(self, budget_id: str, limit: int, window_seconds: float) -> None:
        if limit < 1:
            raise ValueError("the request limit must be at least 1 per window")
        if window_seconds <= 0:
            raise ValueError("the rate window must be longer than 0 seconds")
        self.limit = limit
        self.window_seconds = window_seconds
        self.margin = safety_margin(window_seconds)
        self._id = budget_id
        self._interval = window_seconds + self.margin

    @abstractmethod
    def acquire(self, on_wait: Callable[[float], None] | None = None) -> float:
        """Take a slot of the configured budget, waiting for one; return the seconds waited.
        `on_wait(seconds)` is told once, before the wait starts, how long it should be."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[_Tx]: ...

    @abstractmethod
    def close(self) -> None: ...

    def server_wait(self) -> float:
        """Reserve one request of what the server last said remains; 0.0 when one was (or
        nothing is known), else the seconds until the server's counter resets."""
        with self._transaction() as tx:
            row = tx.row("SELECT available, reset_at FROM budget_server WHERE api = ?", self._id)
            if row is None:
                return 0.0
            available, reset_at = row
            if tx.now >= reset_at:  # the server has started a fresh window
                tx.run("DELETE FROM budget_server WHERE api = ?", (self._id,))
                return 0.0
            if available <= 0:
                return float(reset_at - tx.now)
            tx.run("UPDATE budget_server SET available = available - 1 WHERE api = ?", (self._id,))
            return 0.0

    def server_said(
        self, sent_at: float, available: int | None, reset_seconds: float | None
    ) -> None:
        """Record the server's accounting from an answer to a request sent at `sent_at`."""
        if available is None:
            return
        if reset_seconds is None:
            # No reset header: only a spent budget matters, and a window always ends by then.
            if available > 0:
                return
            reset_seconds = self.window_seconds
        with self._transaction() as tx:
            tx.run(
                "INSERT INTO budget_server (api, available, reset_at, sent_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (api) DO UPDATE SET "
                "available = excluded.available, reset_at = excluded.reset_at, "
                "sent_at = excluded.sent_at WHERE excluded.sent_at >= budget_server.sent_at",
                (self._id, available, tx.now + reset_seconds + self.margin, sent_at),
            )

    def last_server_word(self) -> tuple[int, float] | None:
        """(requests the server said remain, its reset in local epoch seconds), or None when
        nothing current is known. Reserves nothing: for status displays."""
        with self._transaction() as tx:
            row = tx.row("SELECT available, reset_at FROM budget_server WHERE api = ?", self._id)
            if row is None or tx.now >= row[1]:
                return None
            return int(row[0]), time.time() + (row[1] - tx.now)


class _FreshStampBucket(SQLiteBucket):
    """pyrate stamps a slot when acquire() starts and, on each retry, adds the sleep it asked
    for, so time spent waiting for the lock or oversleeping on a busy machine makes the stamp
    older than the request; with stamps too old the server sees more than `limit` in a window.
    Stamped under the lock, a slot is never older than the moment it was granted."""

    def put(self, item: RateItem) -> bool:
        with self.lock:
            item.timestamp = self.now()
            return super().put(item)


class SQLiteBudget(RequestBudget):
    """The budget in one SQLite file, shared by the processes of one machine."""

    def __init__(self, path: Path, budget_id: str, limit: int, window_seconds: float) -> None:
        super().__init__(budget_id, limit, window_seconds)
        self.path = path
        self._interval_ms = round(self._interval * 1000)
        # Before any request: a corrupt file is moved aside (what it says), an unwritable one
        # stops here, naming itself, instead of as "file is not a database" mid-run.
        self.notice = prepare_file(path)
        try:
            # One log per window; the limit is left out, so processes configured with
            # different limits still see each other's requests, each keeping to its own limit.
            self._bucket = _FreshStampBucket.init_from_file(
                [Rate(limit, self._interval_ms)],
                table=f"requests_{round(window_seconds * 1000)}ms",
                db_path=str(path),
                use_file_lock=True,
            )
        except (sqlite3.Error, OSError) as exc:
            raise file_error(path, exc) from None
        self._limiter = Limiter(self._bucket)
        try:
            with self._transaction() as tx:
                tx.run(
                    "CREATE TABLE IF NOT EXISTS budget_server (api TEXT PRIMARY KEY, available "
                    "INTEGER NOT NULL, reset_at REAL NOT NULL, sent_at REAL NOT NULL)",
                    (),
                )
        except BaseException:
            self._limiter.close()  # its leak thread, and the bucket's connection
            raise

    @contextmanager
    def _transaction(self) -> Iterator[_Tx]:
        # A connection per call, so threads never share one; BEGIN IMMEDIATE serializes the
        # read-modify-write across processes (SQLite waits up to `timeout` for the lock).
        try:
            with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Tx(conn.execute, time.time())
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:  # a full disk, a file made read-only meanwhile
            raise file_error(self.path, exc) from None

    def acquire(self, on_wait: Callable[[float], None] | None = None) -> float:
        started = time.monotonic()
        # A prediction for on_wait: the log frees a slot when its limit-th newest stamp expires.
        try:
            blocking = self._bucket.peek(self.limit - 1)
        except (sqlite3.Error, OSError) as exc:
            raise file_error(self.path, exc) from None
        if blocking is not None and on_wait is not None:
            expected = (blocking.timestamp + self._interval_ms) / 1000 - time.time()
            if expected > 0:
                on_wait(expected)
        # pyrate's blocking acquire waits and re-checks, so another process taking the slot
        # first only makes the wait longer.
        try:
            self._limiter.try_acquire("request", blocking=True)
        except (sqlite3.Error, OSError) as exc:
            raise file_error(self.path, exc) from None
        return time.monotonic() - started

    def close(self) -> None:
        self._limiter.close()  # also closes the bucket's SQLite connection


class PostgresBudget(RequestBudget):
    """The budget in PostgreSQL, shared by every process and host that reaches the database."""

    def __init__(self, url: str, schema: str, budget_id: str, limit: int, window: float) -> None:
        super().__init__(budget_id, limit, window)
        # libpq knows no SQLAlchemy "+driver" suffix.
        self._url = re.sub(r"^(postgres(?:ql)?)\+\w+://", r"\1://", url)
        self._schema = schema
        self._log = f"{self._id}/{round(window * 1000)}ms"  # one log per window
        self._lock_key = _lock_key(f"budget/{self._id}")
        self._thread_lock = threading.Lock()  # threads share one connection, in turn
        self._conn: psycopg.Connection[Any] | None = None
        with self._thread_lock:
            self._create_tables(self._connection())

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:  # first use, or lost: reconnect
            try:
                conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:  # libpq may quote the URL, password and all
                scrubber = SecretScrubber(database_url_secrets(self._url))
                said = (str(exc).strip().splitlines() or [""])[0]
                reason = scrubber.scrub(said.replace(self._url, "DATABASE_URL"))
                raise ConnectionError(
                    "The request budget's PostgreSQL database is unreachable "
                    f"({type(exc).__name__}: {reason}); check DATABASE_URL and that the server "
                    "is up, then re-run."
                ) from None
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            self._conn = conn
        return self._conn

    def _create_tables(self, conn: psycopg.Connection[Any]) -> None:
        # Tables, keys and index as declared: whatever is missing comes back (in one locked
        # transaction); no DDL when nothing is, as DDL needs CREATE rights even then.
        from football_assets.resources.budget_schema import heal_budget_schema

        heal_budget_schema(conn, self._schema, _lock_key("ddl"))

    @contextmanager
    def _transaction(self) -> Iterator[_Tx]:
        with self._thread_lock:
            conn = self._connection()
            with conn.transaction():
                # Every read-modify-write of this budget, from any host, queues here; the clock
                # is read after the lock, so time spent queueing never makes a stamp stale.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                now = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8")

                def run(query: str, params: tuple[Any, ...]) -> Any:
                    return conn.execute(query.replace("?", "%s"), params)

                yield _Tx(run, float(now.fetchone()[0]))  # type: ignore[index]

    def acquire(self, on_wait: Callable[[float], None] | None = None) -> float:
        started = time.monotonic()
        told = False
        while (wait := self._take_slot()) > 0:
            if not told and on_wait is not None:
                on_wait(wait)
                told = True
            time.sleep(wait)  # outside the transaction, so the others go on meanwhile
        return time.monotonic() - started

    def _take_slot(self) -> float:
        """Stamp a slot and return 0.0 when the window has room, else the seconds until its
        limit-th newest stamp leaves it: check and insert in one locked transaction."""
        with self._transaction() as tx:
            since = tx.now - self._interval
            blocking = tx.row(
                "SELECT stamp FROM budget_log WHERE budget = ? AND stamp >= ? "
                "ORDER BY stamp DESC OFFSET ? LIMIT 1",
                self._log,
                since,
                self.limit - 1,
            )
            if blocking is not None:
                return float(blocking[0] + self._interval - tx.now) + 0.001
            tx.run("INSERT INTO budget_log (budget, stamp) VALUES (?, ?)", (self._log, tx.now))
            tx.run("DELETE FROM budget_log WHERE budget = ? AND stamp < ?", (self._log, since))
            return 0.0

    def close(self) -> None:
        with self._thread_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _lock_key(name: str) -> int:
    # A signed 64-bit advisory lock key, the same in every process (unlike hash()).
    digest = hashlib.sha256(f"football_assets.budget/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def open_budget(
    *,
    base_url: str,
    api_key: str,
    limit: int,
    window_seconds: float,
    state_dir: Path | None = None,
    database_url: str | None = None,
    schema: str = "football",
) -> RequestBudget:
    """The budget of this API and key: in PostgreSQL when `database_url` is given (a budget
    that holds across hosts), else in a SQLite file in the per-user `state_dir`."""
    budget_id = _budget_id(base_url, api_key)
    if database_url:
        return PostgresBudget(database_url, schema, budget_id, limit, window_seconds)
    if state_dir is None:
        raise ValueError("the request budget needs a state folder or a database URL")
    check_folder(state_dir)  # by writing in it: permissions alone do not stop root
    path = budget_file(state_dir, base_url, api_key)
    return SQLiteBudget(path, budget_id, limit, window_seconds)


def prepare_sqlite_budget(
    *, state_dir: Path, base_url: str, api_key: str, limit: int, window_seconds: float
) -> str | None:
    """Open the per-user SQLite budget once, before anything starts: BudgetStoreError (one
    line) when its folder or file cannot be used; the line to show when a corrupt file was
    moved aside and a new one started."""
    budget = open_budget(
        base_url=base_url,
        api_key=api_key,
        limit=limit,
        window_seconds=window_seconds,
        state_dir=state_dir,
    )
    budget.close()
    assert isinstance(budget, SQLiteBudget)
    return budget.notice
