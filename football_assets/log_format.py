"""Structured logs: one JSON object per line, with the run, step and asset each line is about,
attached to every run by dagster.yaml's `python_logs` (docs/operations.md shows the config)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from football_assets.settings import read_log_format

JSON = "json"

# Dagster attaches its context to each record as `dagster_meta` (and the event object itself as
# `dagster_event`); the fields below are the parts worth a field. The rest (the whole event, every
# run tag) is bulky, not plain JSON, and stays in the event log.
_DAGSTER_META = "dagster_meta"
_DAGSTER_RECORD_ATTRS = (_DAGSTER_META, "dagster_event", "dagster_event_batch_metadata")
_META_FIELDS = ("run_id", "job_name", "step_key", "op_name", "resource_name")


def log_format() -> str:
    """`json` or `text`, from FOOTBALL_LOG_FORMAT (settings.py); anything else is a ConfigError.
    Dagster's own names for its text formats count as text, so one variable can feed both this
    module and `--log-format` of the Dagster processes."""
    return read_log_format()


class DagsterJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, flattening Dagster's record context into fields.

    Every line has `timestamp` (ISO 8601, UTC), `level`, `logger` and `message`; lines from a
    run add `run_id`, `job_name`, `step_key`, and for Dagster events `event_type`, `asset_key`
    and `partition`. `message` is the text as logged, without Dagster's
    "job - run id - pid - step - EVENT -" prefix (those are fields now).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["asctime", "levelname", "name", "message"])
        kwargs.setdefault(
            "rename_fields", {"asctime": "timestamp", "levelname": "level", "name": "logger"}
        )
        kwargs.setdefault("reserved_attrs", [*_reserved_attrs(), *_DAGSTER_RECORD_ATTRS])
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # Shippers sort and join on time: always UTC with milliseconds, never the host's zone.
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        meta = getattr(record, _DAGSTER_META, None)
        if not isinstance(meta, dict):
            return
        log_data["message"] = meta.get("orig_message", log_data.get("message"))
        for field in _META_FIELDS:
            if meta.get(field):
                log_data[field] = meta[field]
        event = meta.get("dagster_event")
        if event is not None:
            log_data["event_type"] = event.event_type_value
            if event.asset_key is not None:
                log_data["asset_key"] = event.asset_key.to_user_string()
            if event.partition is not None:
                log_data["partition"] = event.partition


def _reserved_attrs() -> list[str]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    # taskName (Python 3.12) is noise in a log line, like the other LogRecord internals.
    return [*RESERVED_ATTRS, "taskName"]


def json_stdout_handler(stream: TextIO | None = None) -> logging.Handler:
    """The handler dagster.yaml names: JSON lines on stdout when FOOTBALL_LOG_FORMAT=json.

    Otherwise a NullHandler, so one dagster.yaml serves every environment and the variable in
    each container decides (Dagster's own coloured console logger prints the text either way).
    """
    if log_format() != JSON:
        return logging.NullHandler()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(DagsterJsonFormatter())
    return handler


CLI_LOGGER = "football_assets.cli"


def json_line(message: str, level: int = logging.INFO, **fields: Any) -> str:
    """One line the CLI itself prints in JSON mode, shaped like the runs' lines (`timestamp`,
    `level`, `logger`, `message`, plus `fields`), so stdout is JSON lines throughout."""
    record = logging.LogRecord(CLI_LOGGER, level, __file__, 0, message, None, None)
    record.__dict__.update(fields)
    return DagsterJsonFormatter().format(record)
