"""Where the SQLite request budget lives: its folder probed by writing, a corrupt file moved
aside, failures one line naming the file or folder; read without writing for `status`."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

# Where the state folder comes from (settings.py: $XDG_STATE_HOME/football_assets, else
# ~/.local/state/football_assets): what a user changes to put the budget elsewhere.
STATE_VARIABLE = "XDG_STATE_HOME"
ELSEWHERE = f"or set {STATE_VARIABLE} to another folder"
ONLY_TIMES = "it only holds request times"

_WHY = {
    errno.ENOENT: "it cannot be created: a folder on its path does not exist and cannot be made",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted (immutable? `lsattr` shows an i, `chattr -i` clears it)",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a component of its path is a file, not a folder",
    errno.EEXIST: "a file is in the way of the folder",
    errno.ENAMETOOLONG: "the path is too long",
}
_SQLITE_WHY = {
    sqlite3.SQLITE_READONLY: "it is read-only",
    sqlite3.SQLITE_FULL: "no space left on the device",
    sqlite3.SQLITE_CANTOPEN: "it cannot be opened",
    sqlite3.SQLITE_PERM: "permission denied",
}
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


class BudgetStoreError(Exception):
    """The request budget's file or folder cannot be used; str() is the one line to show."""


def budget_id(base_url: str, api_key: str) -> str:
    """A budget per API and key; truncated SHA-256, so nothing on disk leads back to the key."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\0{api_key}".encode()).hexdigest()[:16]


def budget_file(state_dir: Path, base_url: str, api_key: str) -> Path:
    """Where the SQLite budget of this API and key lives."""
    return state_dir / f"budget-{budget_id(base_url, api_key)}.sqlite"


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in _WHY:
        return _WHY[exc.errno]
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in _SQLITE_WHY:
            return f"{_SQLITE_WHY[code]} ({exc})"
    return " ".join(str(exc).split()) or type(exc).__name__


def folder_error(folder: Path, exc: BaseException) -> BudgetStoreError:
    if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
        return BudgetStoreError(
            f"the request budget's folder {folder} cannot be created: a folder on its path "
            f"does not exist and cannot be made; set {STATE_VARIABLE} to a writable folder"
        )
    return BudgetStoreError(
        f"the request budget's folder {folder} cannot be written: {_why(exc)}; make it "
        f"writable by this user, {ELSEWHERE} ({ONLY_TIMES})"
    )


def file_error(path: Path, exc: BaseException, action: str = "written") -> BudgetStoreError:
    if isinstance(exc, sqlite3.Error) and _is_corrupt(exc):
        return corrupt_error(path, str(exc))
    return BudgetStoreError(
        f"the request budget file {path} cannot be {action}: {_why(exc)}; delete it "
        f"({ONLY_TIMES}), {ELSEWHERE}"
    )


def corrupt_error(path: Path, problem: str) -> BudgetStoreError:
    return BudgetStoreError(
        f"the request budget file {path} is corrupt ({problem}); delete it ({ONLY_TIMES}; the "
        f"next refresh also moves it aside itself), {ELSEWHERE}"
    )


def _is_corrupt(exc: sqlite3.Error) -> bool:
    return ((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF) in _CORRUPT


def write_probe(folder: Path) -> None:
    """Write a file in `folder` and remove it (OSError when it cannot be): a page of bytes, not an
    empty file, which a full disk may still take."""
    fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
    try:
        os.write(fd, bytes(4096))
    finally:
        os.close(fd)
        os.unlink(probe)


def check_folder(folder: Path) -> None:
    """Create the folder (0700) if need be, then probe it by writing: what the budget will do."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_probe(folder)
    except OSError as exc:
        raise folder_error(folder, exc) from None


def _corruption(path: Path) -> str | None:
    """What is wrong with the file as a SQLite database, or None when nothing is."""
    try:
        with closing(sqlite3.connect(path, timeout=30)) as conn:
            rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if _is_corrupt(exc):
            return str(exc)
        raise file_error(path, exc, "read") from None
    if rows == [("ok",)]:
        return None
    return "; ".join(str(row[0]) for row in rows[:3])


@contextmanager
def _moving_lock(path: Path) -> Iterator[None]:
    import fcntl

    try:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise folder_error(path.parent, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def prepare_file(path: Path) -> str | None:
    """Make `path` usable as the budget, before any request: BudgetStoreError when it cannot be
    written; moved aside when corrupt, which returns the line saying so."""
    if not path.exists():
        return None
    try:
        os.close(os.open(path, os.O_RDWR))  # read-only, immutable, a read-only mount
    except OSError as exc:
        raise file_error(path, exc) from None
    if _corruption(path) is None:
        return None
    with _moving_lock(path):  # two refreshes starting at once move it aside once
        problem = _corruption(path)  # another process may have replaced it meanwhile
        if problem is None:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{os.getpid()}")
        try:
            os.replace(path, aside)
            for suffix in ("-wal", "-shm"):  # the corrupt database's; never a new one's
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        except OSError as exc:
            raise BudgetStoreError(
                f"the request budget file {path} is corrupt ({problem}) and cannot be moved "
                f"aside: {_why(exc)}; delete it ({ONLY_TIMES}), {ELSEWHERE}"
            ) from None
    notice = (
        f"the request budget file {path} was corrupt ({problem}); moved it to {aside.name} and "
        f"started a new one ({ONLY_TIMES}; the API's answers set the pace until it fills)"
    )
    return notice


def read_sqlite_word(path: Path, api: str) -> tuple[int, float] | None:
    """(available, reset_at) the server last said, read without writing anything: no lock,
    no journal, no -wal or -shm file created. None when nothing is recorded."""
    wal = Path(f"{path}-wal")
    # Without a WAL the file holds every commit, and immutable reads it with no lock at all;
    # with one (a writer is running, or crashed), a read-only connection reads it too.
    modes = ["mode=ro", "immutable=1"] if wal.exists() else ["immutable=1"]
    for index, mode in enumerate(modes):
        try:
            with closing(sqlite3.connect(f"{path.as_uri()}?{mode}", uri=True)) as conn:
                found = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                    ("budget_server",),
                ).fetchone()
                if found is None:
                    return None
                row = conn.execute(
                    "SELECT available, reset_at FROM budget_server WHERE api = ?", (api,)
                ).fetchone()
                return None if row is None else (int(row[0]), float(row[1]))
        except sqlite3.Error as exc:
            if _is_corrupt(exc) or index == len(modes) - 1:
                raise file_error(path, exc, "read") from None
    return None  # pragma: no cover - the loop returns or raises


def read_postgres_word(url: str, schema: str, api: str) -> tuple[int, float] | None:
    """(available, reset_at in this machine's epoch) from PostgreSQL, in a read-only
    transaction: no table created, no lock taken. None when nothing is recorded."""
    import psycopg
    from psycopg import sql

    url = re.sub(r"^(postgres(?:ql)?)\+\w+://", r"\1://", url)
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        conn.execute("SET default_transaction_read_only = on")
        table = sql.Identifier(schema, "budget_server")
        regclass = sql.SQL("SELECT to_regclass({})").format(sql.Literal(table.as_string(conn)))
        if conn.execute(regclass).fetchone() in (None, (None,)):
            return None
        query = sql.SQL(
            "SELECT available, reset_at, extract(epoch FROM clock_timestamp())::float8 "
            "FROM {} WHERE api = %s"
        ).format(table)
        row = conn.execute(query, (api,)).fetchone()
    if row is None:
        return None
    available, reset_at, db_now = row
    return int(available), time.time() + (float(reset_at) - float(db_now))


_FS_IOC_GETFLAGS = 0x80086601  # Linux; the flags' int, as lsattr reads them
_FS_IMMUTABLE_FL = 0x10


def _immutable(path: Path) -> bool:
    import fcntl
    import struct

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(4)))[0]
    except OSError:  # a file system without the flags (tmpfs, proc)
        return False
    finally:
        os.close(fd)
    return bool(flags & _FS_IMMUTABLE_FL)


def _unwritable(target: Path) -> OSError | None:
    """Why `target` could not be written, told without writing (errno as a write would say)."""
    try:
        fs = os.statvfs(target)
    except OSError as exc:
        return exc
    if fs.f_flag & os.ST_RDONLY:
        return OSError(errno.EROFS, "read-only file system")
    if _immutable(target):
        return OSError(errno.EPERM, "immutable")
    if not os.access(target, os.W_OK):  # permissions: they hold for anyone but root
        return OSError(errno.EACCES, "permission denied")
    if target.is_dir() and fs.f_bavail == 0:
        return OSError(errno.ENOSPC, "no space left")
    return None


def store_problem(path: Path) -> str | None:
    """What would stop the next refresh at this budget file or its folder, found without
    writing (for `status`); None when nothing visible would."""
    if path.parent.is_dir() and (exc := _unwritable(path.parent)) is not None:
        return str(folder_error(path.parent, exc))
    if path.is_file() and (exc := _unwritable(path)) is not None:
        return str(file_error(path, exc))
    return None
