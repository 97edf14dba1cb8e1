"""A Postgres IO manager: raw API responses as JSONB history, warehouse tables by COPY.

Dagster has no official Postgres IO manager, so this is ours, small on purpose: raw assets are
appended to `raw_responses` (one row per response, with run id, partition and fetch time, so
lineage replaces a debug folder), tables are replaced by `Warehouse.replace_table`.

Memory stays flat in the number of partitions: a multi-partition raw output arrives as a
`ResponseSpool` and streams into `raw_responses` through COPY; a multi-partition raw input is
handed over as `RawPartitions` (which partitions, not their payloads), and the table that reads
it extracts its rows from all of them in one SQL statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg

from football_assets.resources.api import ApiResponse
from football_assets.resources.raw_spool import RawRecord, ResponseSpool
from football_assets.resources.warehouse import (
    WAREHOUSE_TABLES,
    DatabaseUnavailable,
    RawPartitions,
    RowsFromRaw,
    Warehouse,
    WarehouseError,
    column_schema,
)

UNPARTITIONED = ""


class PostgresIOManager(dg.ConfigurableIOManager):
    """Stores `raw_*` assets' ApiResponses and `dim_*`/`fact_*` assets' rows in PostgreSQL."""

    warehouse: Warehouse

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        name = context.asset_key.path[-1]
        if name.startswith("raw_"):
            try:
                stored = self.warehouse.append_raw(
                    name, context.run_id, self._raw_records(context, obj)
                )
            finally:
                if isinstance(obj, ResponseSpool):
                    obj.close()
            context.log.info(
                "Stored %d raw %s response(s) in %s.raw_responses.",
                stored,
                name,
                self.warehouse.schema,
            )
            return
        if name in WAREHOUSE_TABLES:
            rows: Iterable[Mapping[str, Any]] | RowsFromRaw = obj
            try:
                stats = self.warehouse.replace_table(name, rows)
            except DatabaseUnavailable:
                raise  # the connection failed: the assets' RetryPolicy may well succeed
            except WarehouseError as exc:
                # PostgreSQL refused the data itself; a retry would be refused the same way.
                raise dg.Failure(description=str(exc), allow_retries=False) from None
            context.add_output_metadata(
                {
                    "dagster/row_count": stats.rows,
                    "dagster/column_schema": column_schema(self.warehouse.schema, name),
                    "dagster/relation_identifier": f"{self.warehouse.schema}.{name}",
                    "rows_inserted": stats.inserted,
                    "rows_updated": stats.updated,
                    "rows_deleted": stats.deleted,
                }
            )
            context.log.info(
                "%s.%s now holds %d rows (%d inserted, %d updated, %d deleted).",
                self.warehouse.schema,
                name,
                stats.rows,
                stats.inserted,
                stats.updated,
                stats.deleted,
            )
            return
        raise dg.DagsterInvariantViolationError(
            f"PostgresIOManager does not know how to store asset {name!r}."
        )

    def load_input(self, context: dg.InputContext) -> Any:
        name = context.asset_key.path[-1]
        if name.startswith("raw_"):
            if context.has_asset_partitions:
                # Named, not loaded: the consumer reads them all in one query, in the database.
                # Partitions never materialized are simply absent from what that query sees.
                return RawPartitions(name, tuple(context.asset_partition_keys))
            found = self.warehouse.latest_raw(name, [UNPARTITIONED])
            if UNPARTITIONED not in found:
                raise dg.Failure(f"{name} has never been materialized; materialize it first.")
            return found[UNPARTITIONED]
        if name in WAREHOUSE_TABLES:
            return self.warehouse.read_table(name)
        raise dg.DagsterInvariantViolationError(
            f"PostgresIOManager does not know how to load asset {name!r}."
        )

    @staticmethod
    def _raw_records(context: dg.OutputContext, obj: Any) -> Iterator[RawRecord]:
        if isinstance(obj, ApiResponse):
            key = context.asset_partition_key if context.has_asset_partitions else UNPARTITIONED
            yield RawRecord.from_response(key, obj)
            return
        if isinstance(obj, ResponseSpool):
            keys = obj.keys()
        elif isinstance(obj, Mapping) and all(isinstance(v, ApiResponse) for v in obj.values()):
            keys = list(obj)
        else:
            raise dg.DagsterInvariantViolationError(
                f"A raw asset must return ApiResponse(s), got {type(obj).__name__}."
            )
        if context.has_asset_partitions:
            expected = set(context.asset_partition_keys)
            if set(keys) != expected:
                raise dg.DagsterInvariantViolationError(
                    f"Expected responses for partitions {sorted(expected)}, got {sorted(keys)}."
                )
        if isinstance(obj, ResponseSpool):
            yield from obj
        else:
            for key, response in obj.items():
                yield RawRecord.from_response(key, response)
