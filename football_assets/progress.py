"""Progress events: what a long refresh is doing, for a display to follow as it happens.

The API client and the ingestion assets log ordinary records (readable in the run's event log)
and attach a `football_progress` dict to the ones a progress display needs: each wait for the
request budget (how long, why, before which request) and each competition fetched (n of N).
A display is a `logging.Handler` on the `football_assets` logger that reads that attribute;
without one, the attribute costs nothing. Runs execute in the refreshing process, so its
handlers see every record as it is logged.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

ATTRIBUTE = "football_progress"
LOGGER = "football_assets.progress"

WaitReason = Literal["budget", "server", "retry"]


def wait_event(seconds: float, reason: WaitReason, endpoint: str, why: str) -> dict[str, Any]:
    """`extra=` for a log record announcing a wait that is about to start."""
    return {
        ATTRIBUTE: {
            "event": "wait",
            "seconds": seconds,
            "reason": reason,
            "endpoint": endpoint,
            "why": why,
        }
    }


def fetched(
    logger: logging.Logger, asset: str, key: str, done: int, total: int, detail: str
) -> None:
    """One partition of `asset` fetched: `done` of `total` in this run."""
    logger.debug(
        "%s %d/%d: %s",
        asset,
        done,
        total,
        detail,
        extra={
            ATTRIBUTE: {
                "event": "fetched",
                "asset": asset,
                "partition": key,
                "done": done,
                "total": total,
                "detail": detail,
            }
        },
    )
