"""API answers on their way to `raw_responses`, held compactly instead of as Python objects.

A single-run backfill of `raw_teams` fetches every competition before Dagster hands its output
to the IO manager. Kept as parsed JSON, 4,000 answers are a few GB of dicts; kept here as their
canonical JSON text (the exact bytes that are hashed and stored), they are a tenth of that, and
past `max_memory` they move to a temporary file, so the run's memory stays flat as N grows.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from football_assets.resources.api import ApiResponse

SPOOL_MEMORY_BYTES = 32 * 1024 * 1024


def canonical_json(payload: Any) -> str:
    """The payload as hashed and stored: sorted keys, no spaces, UTF-8 as is.

    JSONB keeps no key order, so storing this text loses nothing the database would keep.
    """
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RawRecord:
    """One row of `raw_responses`, minus what the store adds (asset, run id, ids, times)."""

    partition_key: str
    fetched_at: datetime
    source: str
    url: str
    http_status: int
    payload_sha256: str
    payload_json: str

    @classmethod
    def from_response(cls, partition_key: str, response: ApiResponse) -> RawRecord:
        text = canonical_json(response.payload)
        return cls(
            partition_key=partition_key,
            fetched_at=response.fetched_at,
            source=response.source,
            url=response.url,
            http_status=response.status,
            payload_sha256=sha256_text(text),
            payload_json=text,
        )


def batch_version(shas_by_partition: dict[str, str]) -> str:
    """One version for a set of partitions: changes when any partition's payload changes."""
    lines = "".join(f"{key}\t{sha}\n" for key, sha in sorted(shas_by_partition.items()))
    return sha256_text(lines)


class ResponseSpool:
    """Append-only, read-once collection of RawRecords, in memory up to a size, then on disk."""

    def __init__(self, max_memory: int = SPOOL_MEMORY_BYTES) -> None:
        # Closed by close(), which the IO manager calls once the records are stored.
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
        ]
        # json.dumps never emits a raw newline, so one line per header and one per payload.
        self._file.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
        self._file.write(record.payload_json.encode() + b"\n")
        self.shas[partition_key] = record.payload_sha256
        return record

    def __len__(self) -> int:
        return len(self.shas)

    def keys(self) -> list[str]:
        return list(self.shas)

    def version(self) -> str:
        return batch_version(self.shas)

    def __iter__(self) -> Iterator[RawRecord]:
        """The records in the order they were added, one at a time."""
        self._file.seek(0)
        while header_line := self._file.readline():
            key, fetched_at, source, url, status, sha = json.loads(header_line)
            payload = self._file.readline().decode().rstrip("\n")
            yield RawRecord(
                key, datetime.fromisoformat(fetched_at), source, url, status, sha, payload
            )

    def close(self) -> None:
        self._file.close()
