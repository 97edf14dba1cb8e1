"""Raw answers on their way to `raw_responses`: canonical JSON and its SHA-256 (the data version),
the JSONB-safe copy of what PostgreSQL cannot hold, a spool that keeps memory flat, the COPY."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from football_assets.resources.api_answers import ApiResponse
from football_assets.resources.warehouse_schema import RAW_RESPONSES

SPOOL_MEMORY_BYTES = 32 * 1024 * 1024
REPLACEMENT = "\ufffd"
_COLUMNS = [
    "asset",
    "partition_key",
    "run_id",
    "fetched_at",
    "source",
    "url",
    "http_status",
    "payload_sha256",
    "payload",
    "payload_exact",
    "sanitized_fields",
]


def canonical_json(payload: Any) -> str:
    """The payload as hashed and stored. JSONB keeps no key order, so sorting loses nothing."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate still hashes to something stable instead of failing.
    return text.encode("utf-8", "surrogatepass")


def sha256_text(text: str) -> str:
    return hashlib.sha256(_utf8(text)).hexdigest()


def payload_sha256(payload: Any) -> str:
    return sha256_text(canonical_json(payload))


def _jsonb_safe_text(text: str) -> str:
    safe = text.replace("\x00", REPLACEMENT)
    if any("\ud800" <= ch <= "\udfff" for ch in safe):
        safe = "".join(REPLACEMENT if "\ud800" <= ch <= "\udfff" else ch for ch in safe)
    return safe


def _unsafe(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def jsonb_safe(payload: Any, path: str = "") -> tuple[Any, list[str]]:
    """A copy PostgreSQL's JSONB accepts, and the paths (e.g. `teams.3.name`) that changed."""
    if isinstance(payload, str):
        return (_jsonb_safe_text(payload), [path]) if _unsafe(payload) else (payload, [])
    if isinstance(payload, list):
        items, changed = [], []
        for index, item in enumerate(payload):
            safe, paths = jsonb_safe(item, f"{path}.{index}" if path else str(index))
            items.append(safe)
            changed += paths
        return items, changed
    if isinstance(payload, dict):
        out: dict[str, Any] = {}
        changed = []
        for key, value in payload.items():
            name = _jsonb_safe_text(key)
            where = f"{path}.{name}" if path else name
            if name != key:
                changed.append(where)
            out[name], paths = jsonb_safe(value, where)
            changed += paths
        return out, changed
    return payload, []


@dataclass(frozen=True)
class RawRecord:
    """One row of `raw_responses`, minus what the store adds (asset, run id, ids, times)."""

    partition_key: str
    fetched_at: datetime
    source: str
    url: str
    http_status: int
    payload_sha256: str
    payload_json: str  # what JSONB holds: the canonical text, sanitized when it had to be
    payload_exact: str | None = None  # the answer verbatim, only when payload_json differs
    sanitized: tuple[str, ...] = ()  # the fields payload_json replaced characters in

    @classmethod
    def from_response(cls, partition_key: str, response: ApiResponse) -> RawRecord:
        text = canonical_json(response.payload)
        stored, exact = text, None
        sanitized: list[str] = []
        # Cheap test first: almost every answer is fine, and walking it would cost more.
        if "\\u0000" in text or _unsafe(text):
            safe, sanitized = jsonb_safe(response.payload)
            if sanitized:
                exact = json.dumps(
                    response.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True
                )
                stored = canonical_json(safe)
        return cls(
            partition_key=partition_key,
            fetched_at=response.fetched_at,
            source=response.source,
            url=response.url,
            http_status=response.status,
            payload_sha256=sha256_text(text),
            payload_json=stored,
            payload_exact=exact,
            sanitized=tuple(sanitized),
        )


class ResponseSpool:
    """Append-only, read-once collection of RawRecords, in memory up to a size, then on disk."""

    def __init__(self, max_memory: int = SPOOL_MEMORY_BYTES) -> None:
        # Closed by close(), once the records are stored.
        self._file = tempfile.SpooledTemporaryFile(max_size=max_memory, mode="w+b")  # noqa: SIM115
        self.shas: dict[str, str] = {}  # partition key -> payload SHA-256, in arrival order

    def add(self, partition_key: str, response: ApiResponse) -> RawRecord:
        """Keep `response` for `partition_key`; the caller may drop it and its payload now."""
        if partition_key in self.shas:
            raise ValueError(f"partition {partition_key!r} is already in the spool")
        record = RawRecord.from_response(partition_key, response)
        header = [
            record.partition_key,
            record.fetched_at.isoformat(),
            record.source,
            record.url,
            record.http_status,
            record.payload_sha256,
            record.payload_exact,
            list(record.sanitized),
        ]
        # One line per header and one per payload: JSON text never holds a raw newline, and
        # both lines are valid UTF-8 (the JSONB text is sanitized, the exact one ASCII).
        self._file.write(json.dumps(header, ensure_ascii=True).encode() + b"\n")
        self._file.write(record.payload_json.encode() + b"\n")
        self.shas[partition_key] = record.payload_sha256
        return record

    def __len__(self) -> int:
        return len(self.shas)

    def keys(self) -> list[str]:
        return list(self.shas)

    def __iter__(self) -> Iterator[RawRecord]:
        """The records in the order they were added, one at a time."""
        self._file.seek(0)
        while header_line := self._file.readline():
            key, fetched_at, source, url, status, sha, exact, sanitized = json.loads(header_line)
            payload = self._file.readline().decode().rstrip("\n")
            yield RawRecord(
                key,
                datetime.fromisoformat(fetched_at),
                source,
                url,
                status,
                sha,
                payload,
                exact,
                tuple(sanitized),
            )

    def close(self) -> None:
        self._file.close()


def copy_records(
    cursor: psycopg.Cursor[Any], schema: str, asset: str, run_id: str, records: Iterable[RawRecord]
) -> int:
    """Append `records` to `raw_responses` through COPY; returns how many. The payload travels
    as its canonical text and PostgreSQL parses it into JSONB: no Python object of it is built."""
    copy_sql = sql.SQL("COPY {table} ({cols}) FROM STDIN").format(
        table=sql.Identifier(schema, RAW_RESPONSES),
        cols=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
    )
    count = 0
    with cursor.copy(copy_sql) as copy:
        for r in records:
            copy.write_row(
                [
                    asset,
                    r.partition_key,
                    run_id,
                    r.fetched_at,
                    r.source,
                    r.url,
                    r.http_status,
                    r.payload_sha256,
                    r.payload_json,
                    r.payload_exact,
                    list(r.sanitized) or None,
                ]
            )
            count += 1
    return count
