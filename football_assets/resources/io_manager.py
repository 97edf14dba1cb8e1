"""The warehouse IO manager: stores an `ApiResponse` in `raw_responses`; loads by the input's
annotation (a payload, `{partition: payload}`, `RawPartitions`, a table as a DataFrame)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from football_assets.resources.api_answers import ApiResponse
from football_assets.resources.raw_records import RawRecord
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_sql import RawPartitions

UNPARTITIONED = ""
TABLE_NAME = "dagster/table_name"


def _asset_name(key: dg.AssetKey) -> str:
    return key.to_user_string()


def _materialized_by(context: dg.InputContext, partition: str) -> str | None:
    """The run of the latest materialization Dagster recorded for the input, if any."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # a context built without an instance
        return None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=context.asset_key, asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    return records[0].run_id if records else None


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Raw answers and tables in the PostgreSQL warehouse (see the module docstring)."""

    warehouse: Warehouse

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if isinstance(obj, ApiResponse):
            key = context.asset_partition_key if context.has_asset_partitions else UNPARTITIONED
            name = _asset_name(context.asset_key)
            self.warehouse.append_raw(name, context.run_id, [RawRecord.from_response(key, obj)])
            context.log.info(
                "Stored the raw %s answer in %s.raw_responses.", name, self.warehouse.schema
            )
            return
        raise dg.DagsterInvariantViolationError(
            f"WarehouseIOManager stores ApiResponse objects, not {type(obj).__name__} "
            f"(asset {context.asset_key.to_user_string()}); tables report MaterializeResult."
        )

    def load_input(self, context: dg.InputContext) -> Any:
        key = context.asset_key
        wanted = context.dagster_type.typing_type if context.dagster_type else Any
        declared = context.upstream_output.definition_metadata if context.upstream_output else {}
        if declared and TABLE_NAME in declared:
            return self._load_table(key, str(declared[TABLE_NAME]), wanted)
        name = _asset_name(key)
        if not context.has_asset_partitions:
            return self._one_payload(context, name, UNPARTITIONED)
        keys = list(context.asset_partition_keys)
        if wanted is RawPartitions:
            # Named, not loaded: partitions never materialized are simply absent from what the
            # consumer's query sees.
            return RawPartitions(name, tuple(keys))
        if len(keys) == 1 and wanted is not dict:
            return self._one_payload(context, name, keys[0])
        return self.warehouse.latest_raw(name, keys)

    def _one_payload(self, context: dg.InputContext, name: str, key: str) -> Any:
        found = self.warehouse.latest_raw(name, [key])
        if key not in found:
            where = f"{name} partition {key}" if key else name
            # Recorded by Dagster yet absent from the table: its rows were removed by hand.
            stored_by = _materialized_by(context, key)
            if stored_by is not None:
                raise dg.Failure(
                    f"the stored {where} answer is gone from {self.warehouse.schema}."
                    f"raw_responses (run {stored_by} stored it; deleted or truncated since); "
                    "run a full refresh (`football-assets refresh`, no --competition) to "
                    "fetch it again.",
                    allow_retries=False,
                )
            raise dg.Failure(
                f"{where} has never been materialized; materialize it first.",
                allow_retries=False,
            )
        return found[key]

    def _load_table(self, key: dg.AssetKey, table_name: str, wanted: Any) -> Any:
        if wanted not in (Any, object, None) and getattr(wanted, "__name__", "") != "DataFrame":
            raise dg.DagsterInvariantViolationError(
                f"{key.to_user_string()} is a table; annotate the input as pandas.DataFrame "
                f"(got {wanted!r})."
            )
        return self.warehouse.read_frame(table_name.rsplit(".", 1)[-1])
