"""Every environment variable the project reads, read and validated once: `load()` raises
`ConfigError`, one line naming the variable and what it accepts, before any run starts."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

# Dagster is not imported here (nor by anything imported here): a bad value fails in a fraction
# of a second, before the second or more that importing Dagster takes.
from football_assets.redaction import DatabaseUrlError, database_url_secrets, parse_database_url
from football_assets.resources.budget_store import write_probe
from football_assets.resources.defaults import (
    DEFAULT_API_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_EMBEDDED_PGDATA,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_SCHEMA,
)
from football_assets.resources.warehouse_schema import SchemaNameError, validate_schema_name

DEFAULT_OUTPUT_DIR = "output"
DEFAULT_RATE_WINDOW_SECONDS = 60.0  # the API's window; tests and the benchmark scale it down
DEFAULT_DAGSTER_HOME = ".dagster_home"  # `football-assets` only; Dagster's own CLI needs it set
MAX_SECONDS = 86_400.0  # a day: longer waits or timeouts are typos, not settings
LOG_FORMATS = {"json": "json", "text": "text", "colored": "text", "rich": "text"}
N = TypeVar("N", int, float)


class ConfigError(ValueError):
    """A configuration value a user set is unusable; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    api_key: str | None = field(repr=False)
    api_url: str
    requests_per_minute: int
    rate_window_seconds: float
    connect_timeout: float
    read_timeout: float
    max_retry_seconds: float
    database_url: str | None = field(repr=False)
    db_schema: str
    embedded_pgdata: Path
    output_location: str  # an absolute folder, or s3://bucket/prefix
    dagster_home: Path | None
    state_dir: Path  # per-user: the request budget every process of this user shares
    log_format: Literal["json", "text"]

    @property
    def live(self) -> bool:
        return self.api_key is not None

    def secrets(self) -> list[str]:
        """Values that must never reach a log, a message or run storage."""
        found = [self.api_key] if self.api_key else []
        if self.database_url:
            found += database_url_secrets(self.database_url)
        return found


def _get(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _number(
    env: Mapping[str, str],
    name: str,
    default: N,
    parse: Callable[[str], N],
    what: str,
    accepted: str,
    within: Callable[[N], bool],
) -> N:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}; set it to {accepted}") from None
    # Finite and bounded: NaN or inf would reach int() or a socket timeout and fail there.
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw!r} is not a finite number; set it to {accepted}")
    if not within(value):
        raise ConfigError(f"{name}={raw!r} is out of range; set it to {accepted}")
    return value


def _int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 1, maximum: int = 10**6
) -> int:
    accepted = f"a whole number from {minimum} to {maximum}, e.g. {default}"
    return _number(
        env, name, default, int, "a whole number", accepted, lambda v: minimum <= v <= maximum
    )


def _seconds(
    env: Mapping[str, str], name: str, default: float, *, maximum: float = MAX_SECONDS
) -> float:
    accepted = f"a number of seconds greater than 0 and at most {maximum:g}, e.g. {default:g}"
    return _number(env, name, default, float, "a number", accepted, lambda v: 0 < v <= maximum)


def _api_url(env: Mapping[str, str]) -> str:
    raw = _get(env, "FOOTBALL_DATA_API_URL") or DEFAULT_API_URL
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"FOOTBALL_DATA_API_URL={raw!r} is not an http(s) URL with a host; set it to e.g. "
            f"{DEFAULT_API_URL}."
        )
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        raise ConfigError(
            f"FOOTBALL_DATA_API_URL={raw!r} has an invalid port; set it to e.g. {DEFAULT_API_URL}."
        ) from None
    return raw.rstrip("/")


def _folder(name: str, raw: str, *, must_exist: bool = False, owned: bool = False) -> Path:
    """An absolute path that is, or can become, a writable folder."""
    path = Path(raw).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name}={raw!r} is a file, not a folder; set it to a folder.")
    if must_exist and not path.exists():
        raise ConfigError(f"{name}={raw!r} does not exist; create the folder or unset {name}.")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{name}={raw!r}: {existing} is a file, so the folder cannot exist.")
    if owned and existing == path:
        # PostgreSQL's own folder: not a stray file in it, not even for a moment (initdb wants
        # it empty); the server says what it cannot write.
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{name}={raw!r}: {path} is not writable by this user.")
        return path
    _probe(name, raw, path, existing)
    return path


def _probe(name: str, raw: str, path: Path, existing: Path) -> None:
    """Write where the folder is or will be, and remove what was written: os.access answers
    for permissions only, and root passes it where nothing can be created (/proc, a read-only
    mount); a page of bytes, as a full disk may still take an empty file."""
    try:
        if existing == path:
            write_probe(path)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".write-probe-", dir=existing))
    except OSError as exc:
        what = "cannot be written" if existing == path else f"cannot be created in {existing}"
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise ConfigError(
            f"{name}={raw!r}: {path} {what} ({reason.lower()}); set {name} to a folder this "
            "user can write."
        ) from None


def _output_location(env: Mapping[str, str]) -> str:
    raw = _get(env, "FOOTBALL_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR
    scheme = urlsplit(raw).scheme
    if scheme == "s3":
        if not urlsplit(raw).netloc:
            raise ConfigError(
                f"FOOTBALL_OUTPUT_DIR={raw!r} names no bucket; use s3://bucket/prefix or a folder."
            )
        return raw.rstrip("/")
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise ConfigError(
            f"FOOTBALL_OUTPUT_DIR={raw!r}: only a folder or s3://bucket/prefix is supported."
        )
    return str(_folder("FOOTBALL_OUTPUT_DIR", raw))


def _embedded_pgdata(env: Mapping[str, str], *, checked: bool) -> Path:
    raw = _get(env, "FOOTBALL_EMBEDDED_PGDATA") or DEFAULT_EMBEDDED_PGDATA
    # Only checked when it is used: with DATABASE_URL set, no embedded server starts.
    return _folder("FOOTBALL_EMBEDDED_PGDATA", raw, owned=True) if checked else Path(raw).absolute()


def _state_dir(env: Mapping[str, str]) -> Path:
    # XDG's rule: a relative XDG_STATE_HOME is invalid and ignored.
    base = _get(env, "XDG_STATE_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "football_assets"


def read_log_format(environ: Mapping[str, str] | None = None) -> Literal["json", "text"]:
    """FOOTBALL_LOG_FORMAT alone: the log handler needs it where nothing else is read."""
    env = os.environ if environ is None else environ
    raw = (_get(env, "FOOTBALL_LOG_FORMAT") or "text").lower()
    if raw not in LOG_FORMATS:
        raise ConfigError(
            f"FOOTBALL_LOG_FORMAT={raw!r} is not a log format; set it to json or text "
            "(colored and rich count as text)."
        )
    return "json" if LOG_FORMATS[raw] == "json" else "text"


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every variable; raise ConfigError naming the first unusable one."""
    env = os.environ if environ is None else environ
    database_url = _get(env, "DATABASE_URL")
    if database_url is not None:
        try:
            parse_database_url(database_url)
        except DatabaseUrlError as exc:
            raise ConfigError(str(exc)) from None
    try:
        schema = validate_schema_name(_get(env, "FOOTBALL_DB_SCHEMA") or DEFAULT_SCHEMA)
    except SchemaNameError as exc:
        raise ConfigError(str(exc)) from None
    home = _get(env, "DAGSTER_HOME")
    return Settings(
        api_key=_get(env, "FOOTBALL_DATA_API_KEY"),
        api_url=_api_url(env),
        requests_per_minute=_int(
            env, "FOOTBALL_DATA_REQUESTS_PER_MINUTE", DEFAULT_REQUESTS_PER_MINUTE
        ),
        rate_window_seconds=_seconds(
            env, "FOOTBALL_DATA_RATE_WINDOW_SECONDS", DEFAULT_RATE_WINDOW_SECONDS
        ),
        connect_timeout=_seconds(env, "FOOTBALL_DATA_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        read_timeout=_seconds(env, "FOOTBALL_DATA_READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
        max_retry_seconds=_seconds(
            env, "FOOTBALL_DATA_MAX_RETRY_SECONDS", DEFAULT_MAX_RETRY_SECONDS
        ),
        database_url=database_url,
        db_schema=schema,
        embedded_pgdata=_embedded_pgdata(env, checked=database_url is None),
        output_location=_output_location(env),
        dagster_home=_folder("DAGSTER_HOME", home) if home else None,
        state_dir=_state_dir(env),
        log_format=read_log_format(env),
    )
