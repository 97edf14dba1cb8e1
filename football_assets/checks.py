"""Asset checks of the tables and the report (the raw steps check themselves): they restate the
schema's keys, so they fail when the schema was changed behind the pipeline's back."""

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from football_assets.assets.reporting import SUMMARY_FILE, summary_csv
from football_assets.assets.warehouse import (
    DIM_COMPETITIONS,
    DIM_TEAMS,
    FACT_COMPETITIONS,
    WAREHOUSE_SPECS,
)
from football_assets.history_checks import HISTORY_SPECS, history_results
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse

Keys = Sequence[dg.AssetCheckKey]


@dataclass(frozen=True)
class TableChecks:
    """Checks evaluated together: `evaluate` yields a result for each key it is given."""

    specs: tuple[dg.AssetCheckSpec, ...]
    evaluate: Callable[[Warehouse, Keys], Iterator[dg.AssetCheckResult]]


def _unique(spec: dg.AssetSpec, key: str) -> TableChecks:
    table = spec.key.to_user_string()
    check = dg.AssetCheckSpec(
        f"{table}_key_unique",
        asset=spec.key,
        description=f"No two rows of {table} share ({key}).",
        blocking=True,
    )

    def evaluate(warehouse: Warehouse, keys: Keys) -> Iterator[dg.AssetCheckResult]:
        (row,) = warehouse.query(
            f"SELECT count(*) AS n, count(DISTINCT ({key})) AS d FROM {{schema}}.{table}"  # noqa: S608
        )
        duplicates = row["n"] - row["d"]
        yield dg.AssetCheckResult(
            asset_key=check.asset_key,
            check_name=check.name,
            passed=duplicates == 0,
            metadata={"rows": row["n"], "duplicate_keys": duplicates},
        )

    return TableChecks((check,), evaluate)


_REFERENCES = dg.AssetCheckSpec(
    "fact_competitions_references_resolve",
    asset=FACT_COMPETITIONS.key,
    description="Every pair points at an existing competition and an existing team.",
    blocking=True,
)


def _references_resolve(warehouse: Warehouse, keys: Keys) -> Iterator[dg.AssetCheckResult]:
    (row,) = warehouse.query(
        """
        SELECT count(*) FILTER (WHERE c.id IS NULL) AS orphan_competitions,
               count(*) FILTER (WHERE t.id IS NULL) AS orphan_teams
        FROM {schema}.fact_competitions f
        LEFT JOIN {schema}.dim_competitions c ON c.id = f.competition_id
        LEFT JOIN {schema}.dim_teams t ON t.id = f.team_id
        """
    )
    yield dg.AssetCheckResult(
        asset_key=_REFERENCES.asset_key,
        check_name=_REFERENCES.name,
        passed=row["orphan_competitions"] == 0 and row["orphan_teams"] == 0,
        metadata=row,
    )


REFERENCES_RESOLVE = TableChecks((_REFERENCES,), _references_resolve)


def checks_step(name: str, groups: Sequence[TableChecks]) -> dg.AssetChecksDefinition:
    """The blocking checks of `groups` in ONE step (an executed check alone evaluates alone).

    A check that raises does not keep the others from their verdicts: the step fails with the
    first error once every other selected check has reported."""

    @dg.multi_asset_check(
        specs=[spec for group in groups for spec in group.specs], can_subset=True, name=name
    )
    def _step(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        errors: list[Exception] = []
        for group in groups:
            keys = [spec.key for spec in group.specs if spec.key in selected]
            if not keys:
                continue
            try:
                yield from group.evaluate(warehouse, keys)
            except Exception as exc:  # noqa: BLE001  # raised below, after the other checks
                context.log.error("%s: %s", ", ".join(k.name for k in keys), exc)
                errors.append(exc)
        if errors:
            raise errors[0]

    return _step


# Two steps, not one: a failing blocking check fails its step, and Dagster then skips every
# step downstream of that step. The report reads dim_competitions and fact_competitions only,
# so their checks gate it and the others (dim_teams, the history tables) must not.
REPORT_INPUT_CHECKS = checks_step(
    "report_input_checks",
    [
        _unique(DIM_COMPETITIONS, "id"),
        _unique(FACT_COMPETITIONS, "competition_id, team_id"),
        REFERENCES_RESOLVE,
    ],
)
TABLE_CHECKS = checks_step(
    "table_checks",
    [_unique(DIM_TEAMS, "id"), TableChecks(HISTORY_SPECS, history_results)],
)


@dg.asset_check(
    asset=summary_csv,
    description="summary.csv has exactly one row per competition in dim_competitions.",
)
def summary_has_every_competition(
    warehouse: Warehouse, summary_output: OutputLocation
) -> dg.AssetCheckResult:
    text = summary_output.read_bytes(SUMMARY_FILE).decode("utf-8")
    in_csv = [int(r["competition_id"]) for r in csv.DictReader(io.StringIO(text, newline=""))]
    in_table = sorted(r["id"] for r in warehouse.query("SELECT id FROM {schema}.dim_competitions"))
    missing = sorted(set(in_table) - set(in_csv))
    extra = sorted(set(in_csv) - set(in_table))
    repeated = len(in_csv) - len(set(in_csv))
    metadata: dict[str, Any] = {
        "csv_rows": len(in_csv),
        "competitions": len(in_table),
        "missing": ", ".join(map(str, missing)) or "none",
        "unexpected": ", ".join(map(str, extra)) or "none",
        "repeated_rows": repeated,
    }
    return dg.AssetCheckResult(
        passed=not missing and not extra and repeated == 0, metadata=metadata
    )


ALL_CHECKS = [
    REPORT_INPUT_CHECKS,
    TABLE_CHECKS,
    summary_has_every_competition,
    # A table's columns (dagster/column_schema) changed between its last two materializations:
    # WARN once, on the materialization that changed them.
    *dg.build_column_schema_change_checks(assets=[spec.key for spec in WAREHOUSE_SPECS]),
]
