"""Loopback test double of the football-data.org v4 API: the snapshot's answers, its auth errors,
fixed-window rate limit and headers (football_assets/snapshot/README.md), request accounting and
injected faults, so tests check that a client keeps to the limit and survives a bad server."""

from test_support.api_double.data import SNAPSHOT_DIR, ApiData, make_competition, make_team
from test_support.api_double.faults import Fault, body, delay, drop, rate_limited, status
from test_support.api_double.records import RequestRecord
from test_support.api_double.server import DEFAULT_API_KEY, FootballApiDouble
from test_support.api_double.wire import MSG_INVALID_TOKEN, MSG_NOT_FOUND, MSG_RESTRICTED

__all__ = [
    "DEFAULT_API_KEY",
    "MSG_INVALID_TOKEN",
    "MSG_NOT_FOUND",
    "MSG_RESTRICTED",
    "SNAPSHOT_DIR",
    "ApiData",
    "Fault",
    "FootballApiDouble",
    "RequestRecord",
    "body",
    "delay",
    "drop",
    "make_competition",
    "make_team",
    "rate_limited",
    "status",
]
