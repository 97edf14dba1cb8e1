"""The request budget in a SQLite file, shared by the processes of one machine: each
transaction is BEGIN IMMEDIATE, so check-and-take is one step across processes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from football_assets.resources.budget_schema import Tx, sqlite_ddl
from football_assets.resources.budget_store import file_error, prepare_file


class SQLiteStore:
    """Where a budget lives on one machine: a file per API and key in the per-user state folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # Before any request: a corrupt file is moved aside (what it says), an unwritable one
        # stops here, naming itself, instead of as "file is not a database" mid-run.
        self.notice = prepare_file(path)
        try:
            with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as conn:
                # WAL: `status` reads while a refresh writes; NORMAL: no fsync per request
                # (a crash may lose the last stamps, which the server's word then covers).
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                for statement in sqlite_ddl():
                    conn.execute(statement)
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise file_error(path, exc) from None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        # Threads share one connection, in turn: closing the last connection to a WAL file
        # checkpoints it (an fsync), which a connection per transaction paid every request.
        # BEGIN IMMEDIATE takes the file's write lock first (waiting up to `timeout`), and the
        # clock is read once it holds it.
        with self._thread_lock:
            try:
                if self._conn is None:
                    self._conn = sqlite3.connect(
                        self.path, timeout=30, isolation_level=None, check_same_thread=False
                    )
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(conn.execute, time.time())
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:  # a full disk, a file made read-only
                self._close()  # the next transaction starts on a new connection
                raise file_error(self.path, exc) from None

    def close(self) -> None:
        with self._thread_lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with suppress(sqlite3.Error):
                conn.close()
