"""The request budget in PostgreSQL, shared by every process and host that reaches the database:
each transaction holds an advisory lock per budget and reads the database's clock.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from football_assets.redaction import SecretScrubber, database_url_secrets
from football_assets.resources.budget_schema import Tx, heal_budget_schema


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key, the same in every process (unlike hash())."""
    digest = hashlib.sha256(f"football_assets.budget/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresStore:
    """Where a budget lives across hosts (ECS tasks share no files): a schema of the database."""

    notice: str | None = None

    def __init__(self, url: str, schema: str, budget_id: str) -> None:
        # libpq knows no SQLAlchemy "+driver" suffix.
        self._url = re.sub(r"^(postgres(?:ql)?)\+\w+://", r"\1://", url)
        self._schema = schema
        self._lock_key = lock_key(f"budget/{budget_id}")
        self._thread_lock = threading.Lock()  # threads share one connection, in turn
        self._conn: psycopg.Connection[Any] | None = None
        with self._thread_lock:
            # Tables, keys and index as declared: whatever is missing comes back (in one
            # locked transaction); no DDL when nothing is, as DDL needs CREATE rights even then.
            heal_budget_schema(self._connection(), self._schema, lock_key("ddl"))

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

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._thread_lock:
            conn = self._connection()
            with conn.transaction():
                # Every read-modify-write of this budget, from any host, queues here. Stamps
                # are epoch seconds of the database's clock (no session TimeZone can skew
                # them), read after the lock, so time spent queueing never makes one stale.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                now = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8")

                def run(query: str, params: tuple[Any, ...]) -> Any:
                    return conn.execute(query.replace("?", "%s"), params)

                yield Tx(run, float(now.fetchone()[0]))  # type: ignore[index]

    def close(self) -> None:
        with self._thread_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
