"""A Postgres IO manager: raw API responses as JSONB history, warehouse tables by COPY.

Dagster has no official Postgres IO manager, so this is ours, small on purpose: raw assets are
appended to `raw_responses` (one row per response, with run id, partition and fetch time, so
lineage replaces a debug folder), tables are replaced by `Warehouse.replace_table`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from football_assets.resources.api import ApiResponse
from football_assets.resources.warehouse import WAREHOUSE_TABLES, Warehouse, column_schema

UNPARTITIONED = ""


class PostgresIOManager(dg.ConfigurableIOManager):
    """Stores `raw_*` assets' ApiResponses and `dim_*`/`fact_*` assets' rows in PostgreSQL."""

    warehouse: Warehouse

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        name = context.asset_key.path[-1]
        if name.startswith("raw_"):
            responses = self._responses_by_partition(context, obj)
            self.warehouse.store_raw(name, context.run_id, responses)
            context.log.info(
                "Stored %d raw %s response(s) in %s.raw_responses.",
                len(responses),
                name,
                self.warehouse.schema,
            )
            return
        if name in WAREHOUSE_TABLES:
            rows: Iterable[Mapping[str, Any]] = obj
            stats = self.warehouse.replace_table(name, rows)
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
                # All partitions in one query; partitions never materialized are simply absent.
                return self.warehouse.latest_raw(name, list(context.asset_partition_keys))
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
    def _responses_by_partition(context: dg.OutputContext, obj: Any) -> dict[str, ApiResponse]:
        if isinstance(obj, ApiResponse):
            key = context.asset_partition_key if context.has_asset_partitions else UNPARTITIONED
            return {key: obj}
        if isinstance(obj, Mapping) and all(isinstance(v, ApiResponse) for v in obj.values()):
            if context.has_asset_partitions:
                expected = set(context.asset_partition_keys)
                if set(obj) != expected:
                    raise dg.DagsterInvariantViolationError(
                        f"Expected responses for partitions {sorted(expected)}, got {sorted(obj)}."
                    )
            return dict(obj)
        raise dg.DagsterInvariantViolationError(
            f"A raw asset must return ApiResponse(s), got {type(obj).__name__}."
        )
