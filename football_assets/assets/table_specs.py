"""The spec every warehouse table shares (group, owners, automation, freshness, skippable), one
builder for the three tables and the two history tables."""

from __future__ import annotations

from typing import Any

import dagster as dg

from football_assets.policies import (
    DAILY_FRESHNESS,
    DOWNSTREAM_CONDITION,
    IO_MANAGER,
    OWNERS,
    WAREHOUSE,
)


def table_spec(
    name: str,
    deps: list[Any],
    description: str,
    *,
    code_version: str,
    metadata: dict[str, Any] | None = None,
) -> dg.AssetSpec:
    """A warehouse table's spec; `dagster/table_name` is what the IO manager reads it by."""
    return dg.AssetSpec(
        name,
        group_name=WAREHOUSE,
        owners=OWNERS,
        kinds={"postgres"},
        deps=deps,
        code_version=code_version,
        automation_condition=DOWNSTREAM_CONDITION,
        freshness_policy=DAILY_FRESHNESS,
        metadata={"dagster/table_name": name, **(metadata or {})},
        description=description,
        # A table whose rows did not change records no materialization (nothing downstream moves).
        skippable=True,
    ).with_io_manager_key(IO_MANAGER)
