"""The loggers of a refresh's runs: the display's feed, Dagster's log lines to a file, JSON."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from football_assets import progress
from football_assets.cli.display import DagsterEventHandler, Display, ProgressHandler

DISPLAY_LOGGER = "football_display"
JSON_LOGGER = "football_json"
FILE_LOGGER = "football_file"


def run_loggers(
    display: Display, json_lines: bool, log_file: logging.Handler | None
) -> tuple[Any, dict[str, Any]]:
    """The runs' Dagster loggers: one feeding the display with each run's events; Dagster's log
    lines to `log_file` (plain text) or, without one (--verbose), its console logger; and the
    JSON stdout handler when the instance's python_logs lack it."""
    import dagster as dg

    from football_assets.log_format import json_stdout_handler

    def fixed(name: str, handler: logging.Handler, level: int) -> dg.LoggerDefinition:
        logger = logging.Logger(f"football_assets.cli.{name}", level)
        logger.addHandler(handler)
        return dg.LoggerDefinition(lambda _: logger, description=f"football-assets {name}")

    loggers = {
        **dg.default_loggers(),
        DISPLAY_LOGGER: fixed("display", DagsterEventHandler(display), logging.DEBUG),
    }
    config: dict[str, Any] = {DISPLAY_LOGGER: {}}
    if log_file is None:
        config["console"] = {"config": {"log_level": "INFO"}}
    else:
        loggers[FILE_LOGGER] = fixed("file", log_file, logging.INFO)
        config[FILE_LOGGER] = {}
    if json_lines:
        loggers[JSON_LOGGER] = fixed("json", json_stdout_handler(), logging.INFO)
        config[JSON_LOGGER] = {}
    return loggers, {"loggers": config}


def file_handler(path: Path) -> logging.Handler:
    """Dagster's console format, without colours: a file is read with less or grep."""
    from dagster._utils.log import default_date_format_string, default_format_string

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(default_format_string(), default_date_format_string()))
    return handler


@contextlib.contextmanager
def progress_feed(display: Display) -> Iterator[None]:
    """The display's handler on the loggers that carry progress events. `fetched` events are
    DEBUG: read here, kept out of the event log (the logger stops propagating meanwhile)."""
    handler = ProgressHandler(display)
    feed = logging.getLogger(progress.LOGGER)
    saved = feed.level, feed.propagate
    feed.setLevel(logging.DEBUG)
    feed.propagate = False
    targets = [feed, *(logging.getLogger(name) for name in progress.LOGGERS)]
    for logger in targets:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in targets:
            logger.removeHandler(handler)
        feed.setLevel(saved[0])
        feed.propagate = saved[1]
