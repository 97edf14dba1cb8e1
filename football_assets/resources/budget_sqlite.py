"""The request budget in a SQLite file, shared by the processes of one machine: each
transaction is BEGIN IMMEDIATE, so check-and-take is one step across processes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from football_assets.resources.budget_schema import Tx, sqlite_ddl
from football_assets.resources.budget_store import file_error, prepare_file


class SQLiteStore:
    """Where a budget lives on one machine: a file per API and key in the per-user state folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
        # A connection per transaction, so threads never share one; BEGIN IMMEDIATE takes the
        # write lock first (waiting up to `timeout`), and the clock is read once it holds it.
        try:
            with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(conn.execute, time.time())
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:  # a full disk, a file made read-only meanwhile
            raise file_error(self.path, exc) from None

    def close(self) -> None:
        """Nothing stays open between transactions."""
