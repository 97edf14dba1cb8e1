"""The request budget of one API key, shared by every process that spends it, wherever it runs:
one sliding-window log plus the server's last word, taken in one transaction, waited for in
`RequestBudget.spend`; kept in SQLite (one machine) or PostgreSQL (across hosts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from football_assets.resources.budget_schema import Tx
from football_assets.resources.budget_store import BudgetStoreError, budget_file, check_folder
from football_assets.resources.budget_store import budget_id as _budget_id

__all__ = [
    "BudgetStoreError",
    "RequestBudget",
    "Wait",
    "budget_file",
    "open_budget",
    "prepare_sqlite_budget",
    "safety_margin",
]


def safety_margin(window_seconds: float) -> float:
    """Seconds added to every wait for the budget: 5 % of the window, at least 0.1 s, at most 1 s.

    Covers the time from taking a slot to the server counting the request (a loaded machine,
    a slow connect) and a reset header the server may round down.
    """
    return min(1.0, max(0.1, 0.05 * window_seconds))


class Wait(NamedTuple):
    """What `RequestBudget.take` decided: 0.0 seconds when a request was taken, else how long
    until one may be, and whose word says so."""

    seconds: float
    reason: Literal["budget", "server"]  # the configured budget, or the server's last word


class BudgetStore(Protocol):
    """Where a budget is kept: transactions that exclude each other, and their clock."""

    notice: str | None  # a line to show once, e.g. that a corrupt file was moved aside

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def close(self) -> None: ...


class RequestBudget:
    """At most `limit` requests per `window_seconds` (plus margin) across every process that
    shares the budget, and none while the server says its own budget is spent.

    The log is stricter than the server's fixed window (every fixed window is also a sliding
    one), so keeping to it never trips the server; the server's word (the freshest any process
    heard, by `sent_at`) keeps the client right when the server is tighter than configured.
    """

    def __init__(
        self, store: BudgetStore, budget_id: str, limit: int, window_seconds: float
    ) -> None:
        _check(limit, window_seconds)
        self.limit = limit
        self.window_seconds = window_seconds
        self.margin = safety_margin(window_seconds)
        self.notice = store.notice
        self._store = store
        self._id = budget_id
        # One log per window; the limit is left out, so processes configured with different
        # limits still see each other's requests, each keeping to its own limit.
        self._log = f"{budget_id}/{round(window_seconds * 1000)}ms"
        self._interval = window_seconds + self.margin

    def spend(self, on_wait: Callable[[Wait], None] | None = None) -> float:
        """Wait until the budget allows one request, and take it; return the seconds waited.
        The one place a request waits for the rate limit: `on_wait` is told before each wait
        whose reason differs from the last one told."""
        started = time.monotonic()
        told: str | None = None
        while (wait := self.take()).seconds > 0:
            if on_wait is not None and wait.reason != told:
                on_wait(wait)
                told = wait.reason
            time.sleep(wait.seconds)  # outside the transaction, so the others go on meanwhile
        return time.monotonic() - started

    def take(self) -> Wait:
        """Take one request if both the server's word and the log have room, in one
        transaction; else take nothing and say how long until one may have room."""
        with self._store.transaction() as tx:
            word = tx.row("SELECT available, reset_at FROM budget_server WHERE api = ?", self._id)
            if word is not None and tx.now >= word[1]:  # the server has started a fresh window
                tx.run("DELETE FROM budget_server WHERE api = ?", (self._id,))
                word = None
            if word is not None and word[0] <= 0:
                return Wait(float(word[1] - tx.now), "server")
            since = tx.now - self._interval
            # The log frees a slot when its limit-th newest stamp leaves the window.
            blocking = tx.row(
                "SELECT stamp FROM budget_log WHERE budget = ? AND stamp >= ? "
                "ORDER BY stamp DESC LIMIT 1 OFFSET ?",
                self._log,
                since,
                self.limit - 1,
            )
            if blocking is not None:
                return Wait(float(blocking[0] + self._interval - tx.now) + 0.001, "budget")
            tx.run("INSERT INTO budget_log (budget, stamp) VALUES (?, ?)", (self._log, tx.now))
            tx.run("DELETE FROM budget_log WHERE budget = ? AND stamp < ?", (self._log, since))
            if word is not None:
                tx.run(
                    "UPDATE budget_server SET available = available - 1 WHERE api = ?",
                    (self._id,),
                )
            return Wait(0.0, "budget")

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
        with self._store.transaction() as tx:
            tx.run(
                "INSERT INTO budget_server (api, available, reset_at, sent_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (api) DO UPDATE SET "
                "available = excluded.available, reset_at = excluded.reset_at, "
                "sent_at = excluded.sent_at WHERE excluded.sent_at >= budget_server.sent_at",
                (self._id, available, tx.now + reset_seconds + self.margin, sent_at),
            )

    def last_server_word(self) -> tuple[int, float] | None:
        """(requests the server said remain, its reset in local epoch seconds), or None when
        nothing current is known. Takes nothing: for status displays."""
        with self._store.transaction() as tx:
            row = tx.row("SELECT available, reset_at FROM budget_server WHERE api = ?", self._id)
            if row is None or tx.now >= row[1]:
                return None
            return int(row[0]), time.time() + (row[1] - tx.now)

    def close(self) -> None:
        self._store.close()


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
    _check(limit, window_seconds)  # before anything is created
    store: BudgetStore
    if database_url:
        from football_assets.resources.budget_postgres import PostgresStore

        store = PostgresStore(database_url, schema, budget_id)
    elif state_dir is None:
        raise ValueError("the request budget needs a state folder or a database URL")
    else:
        from football_assets.resources.budget_sqlite import SQLiteStore

        check_folder(state_dir)  # by writing in it: permissions alone do not stop root
        store = SQLiteStore(budget_file(state_dir, base_url, api_key))
    return RequestBudget(store, budget_id, limit, window_seconds)


def _check(limit: int, window_seconds: float) -> None:
    if limit < 1:
        raise ValueError("the request limit must be at least 1 per window")
    if window_seconds <= 0:
        raise ValueError("the rate window must be longer than 0 seconds")


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
    return budget.notice
