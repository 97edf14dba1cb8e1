"""Environment-variable configuration, read in one place.

Every knob a user can turn is an environment variable (`.env` is read by `dagster dev`);
this module names them, gives their defaults and turns bad values into one clear line.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_API_URL = "https://api.football-data.org/v4"
DEFAULT_REQUESTS_PER_MINUTE = 10  # the free tier
DEFAULT_SCHEMA = "football"
DEFAULT_OUTPUT_DIR = "output"
DEFAULT_EMBEDDED_PGDATA = ".football/pgdata"
DEFAULT_CONNECT_TIMEOUT = 5.0  # seconds to establish a connection to the API
DEFAULT_READ_TIMEOUT = 30.0  # seconds to wait for (each part of) an answer
DEFAULT_MAX_RETRY_SECONDS = 300.0  # how long one request may keep failing before giving up


class ConfigError(ValueError):
    """A configuration value a user set is unusable; the message says which and how to fix it."""


def env(name: str, default: str | None = None) -> str | None:
    """The variable's value; empty counts as unset, as in most shells' `VAR=` idiom."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number; set it to e.g. {default}"
        ) from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to e.g. {default}") from None
    if value <= minimum:
        raise ConfigError(f"{name}={value} must be greater than {minimum}")
    return value


def api_key() -> str | None:
    return env("FOOTBALL_DATA_API_KEY")


def api_url() -> str:
    return (env("FOOTBALL_DATA_API_URL") or DEFAULT_API_URL).rstrip("/")


def requests_per_minute() -> int:
    return env_int("FOOTBALL_DATA_REQUESTS_PER_MINUTE", DEFAULT_REQUESTS_PER_MINUTE)


def rate_window_seconds() -> float:
    # The API's window is a minute; tests and the benchmark scale it down to seconds.
    return env_float("FOOTBALL_DATA_RATE_WINDOW_SECONDS", 60.0)


def connect_timeout() -> float:
    return env_float("FOOTBALL_DATA_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)


def read_timeout() -> float:
    return env_float("FOOTBALL_DATA_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)


def max_retry_seconds() -> float:
    return env_float("FOOTBALL_DATA_MAX_RETRY_SECONDS", DEFAULT_MAX_RETRY_SECONDS)


def database_url() -> str | None:
    return env("DATABASE_URL")


def db_schema() -> str:
    return env("FOOTBALL_DB_SCHEMA", DEFAULT_SCHEMA) or DEFAULT_SCHEMA


def output_dir() -> Path:
    return Path(env("FOOTBALL_OUTPUT_DIR", DEFAULT_OUTPUT_DIR) or DEFAULT_OUTPUT_DIR).absolute()


def embedded_pgdata() -> Path:
    return Path(env("FOOTBALL_EMBEDDED_PGDATA", DEFAULT_EMBEDDED_PGDATA) or "").absolute()


def dagster_home() -> Path | None:
    home = env("DAGSTER_HOME")
    return Path(home) if home else None


def state_dir() -> Path:
    """Where cross-process state (the shared rate-limit bucket) lives: beside the instance."""
    home = dagster_home()
    return (home if home else Path(".football").absolute()) / "football_assets"
