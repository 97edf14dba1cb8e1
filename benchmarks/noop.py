"""Dagster's floor: the pipeline's shape with every asset a no-op, run the way refresh runs:
raw_competitions, raw_teams, the warehouse step's five tables and summary_csv (`whole`), or the
warehouse steps alone (`warehouse`); `python -m benchmarks.noop --help`."""

# No `from __future__ import annotations`: Dagster reads the annotations of the assets below,
# which are defined inside functions that import dagster lazily (after the profiler starts).
import argparse
import atexit
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks import measured_cli

PARTITIONS = "competitions"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
WAREHOUSE_SHAPE = "warehouse_tables:5,summary_csv:1"


def parse_steps(text: str) -> list[tuple[str, int]]:
    """`warehouse_tables:3,summary_csv:1` -> [(step, assets it materializes), ...]."""
    steps = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition(":")
        steps.append((name, int(count or 1)))
    return steps


def _noop_step(name: str, assets: int, deps: Sequence[Any], **kwargs: Any) -> Any:
    """One step materializing `assets` assets and nothing else, after `deps`."""
    import dagster as dg

    if assets == 1:

        @dg.asset(name=name, deps=list(deps), **kwargs)
        def one() -> dg.MaterializeResult:
            return dg.MaterializeResult()

        return one
    specs = [dg.AssetSpec(f"{name}_{i}", deps=list(deps), **kwargs) for i in range(1, assets + 1)]

    @dg.multi_asset(name=name, specs=specs, can_subset=False)
    def several() -> Any:
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key)

    return several


def warehouse_floor(steps: list[tuple[str, int]]) -> dict[str, Any]:
    """The warehouse phase's steps as no-ops, chained in order, in one run."""
    import dagster as dg

    assets: list[Any] = []
    for name, count in steps:
        assets.append(_noop_step(f"noop_{name}", count, assets[-1:], group_name="noop"))
    defs = dg.Definitions(assets=assets)
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, run_config=QUIET
        )
    steps_run = {f"noop_{name}": name for name, _ in steps}
    return {"run_ids": [result.run_id], "steps": steps_run}


# The checks of the pipeline (football_assets' definitions): evaluated inside the raw steps,
# and after the tables in two steps of blocking checks, Dagster's column-schema check of each
# table in a third, the report's check in a fourth.
RAW_CHECKS = {"raw_competitions": 2, "raw_teams": 4}
TABLE_CHECKS = (1, 1, 2, 1, 1)  # per table of the warehouse step, in order
TABLE_CHECK_STEPS = ((0, 2), (1, 3, 4))  # which tables' checks share a step (3 checks each)
REPORT_CHECKS = 1
TABLES = 5  # three tables and the two history tables


def _passing(asset: str, count: int) -> tuple[list[Any], list[Any]]:
    """`count` check specs on `asset` and their passing results."""
    import dagster as dg

    specs = [dg.AssetCheckSpec(f"check_{i}", asset=asset) for i in range(1, count + 1)]
    results = [dg.AssetCheckResult(passed=True, check_name=spec.name) for spec in specs]
    return specs, results


def _check_steps(tables: Any, summary: Any) -> list[Any]:
    """The table and report checks, in steps as the pipeline's."""
    import dagster as dg

    def step(name: str, specs: list[Any]) -> Any:
        @dg.multi_asset_check(specs=specs, name=name)
        def _step() -> Any:
            for spec in specs:
                yield dg.AssetCheckResult(
                    asset_key=spec.asset_key, check_name=spec.name, passed=True
                )

        return _step

    keys = list(tables.keys)
    checks = [
        step(
            f"table_checks_{n}",
            [
                dg.AssetCheckSpec(f"check_{i}", asset=keys[t], blocking=True)
                for t in tables_of_step
                for i in range(1, TABLE_CHECKS[t] + 1)
            ],
        )
        for n, tables_of_step in enumerate(TABLE_CHECK_STEPS)
    ]

    @dg.asset_check(asset=summary.key, name="check_1")
    def report() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    schema = [dg.AssetCheckSpec("column_schema", asset=key) for key in keys]
    return [*checks, report, step("column_schemas", schema)]


def whole_floor(partitions: int, runs: int = 2, checks: bool = False) -> dict[str, Any]:
    """No-op assets of the pipeline's shape, in two in-process runs (see main);
    `runs=3` runs the range and the warehouse apart, as `refresh` does; `checks` adds the
    pipeline's asset checks, each a no-op that passes."""
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    gc.freeze()  # as football_assets.cli.refresh_command does after its imports
    competitions = dg.DynamicPartitionsDefinition(name=PARTITIONS)
    keys = [str(2000 + i) for i in range(partitions)]
    raw_specs, raw_results = _passing("raw_competitions", RAW_CHECKS["raw_competitions"] * checks)
    team_specs, team_results = _passing("raw_teams", RAW_CHECKS["raw_teams"] * checks)

    @dg.asset(check_specs=raw_specs)
    def raw_competitions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        context.instance.add_dynamic_partitions(PARTITIONS, keys)
        return dg.MaterializeResult(check_results=raw_results)

    @dg.asset(
        partitions_def=competitions,
        deps=[raw_competitions],
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=team_specs,
    )
    def raw_teams() -> dg.MaterializeResult:
        return dg.MaterializeResult(check_results=team_results)

    tables = _noop_step("warehouse_tables", TABLES, [raw_competitions, raw_teams])
    summary = _noop_step("summary_csv", 1, [tables])
    extra = _check_steps(tables, summary) if checks else []
    defs = dg.Definitions(assets=[raw_competitions, raw_teams, tables, summary], asset_checks=extra)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        first = job.execute_in_process(
            instance=instance, asset_selection=[raw_competitions.key], run_config=QUIET
        )
        warehouse = [*tables.keys, *summary.keys]
        ranged = [raw_teams.key] if runs == 3 else [raw_teams.key, *warehouse]
        second = job.execute_in_process(
            instance=instance,
            asset_selection=ranged,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1],
            },
            run_config=QUIET,
        )
        run_ids = [first.run_id, second.run_id]
        if runs == 3:
            third = job.execute_in_process(
                instance=instance, asset_selection=warehouse, run_config=QUIET
            )
            run_ids.append(third.run_id)
    return {"run_ids": run_ids}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.noop whole [--partitions 13]` (with DAGSTER_HOME set; the benchmark
    gives it a fresh SQLite instance) is the floor of a whole refresh: the same assets doing
    nothing, `raw_competitions` (which registers the dynamic partitions), `raw_teams`
    (partitioned by them, one run for the range), the warehouse step's five tables (three tables
    and the two history tables, one step, as the code loads them in one transaction) and
    `summary_csv`, materialized in two in-process runs in a fresh process: the competition list,
    then the range of `raw_teams` together with everything downstream (Dagster runs a partition
    range and unpartitioned assets in one run; the range tags apply to the partitioned asset
    only). Prints the run ids as JSON. Its process is run the way `football-assets refresh` runs
    its own: the modules it loaded frozen out of the garbage collector's sight (`gc.freeze()`)
    before the runs, and an exit that runs the exit handlers but skips Python's teardown, so the
    floor keeps what refresh saves there and the ratio compares like with like.

    `python -m benchmarks.noop warehouse --steps warehouse_tables:5,summary_csv:1` is the floor
    of the warehouse phase alone, shaped like the steps the measured code ran (step name and how
    many assets it materializes), in the scale's own instance: the difference is the work.

    With BENCHMARK_PHASES=1 and BENCHMARK_REPORT set it reports where its time went, exactly as
    `benchmarks.measured_cli` does for the refresh (`benchmarks.phases`)."""
    profiling = os.environ.get("BENCHMARK_PHASES") == "1"
    if profiling:  # before Dagster is imported, so its import counts
        from benchmarks import phases

        phases.install()
    # Reports at exit, as `football-assets` measured by measured_cli does.
    atexit.register(measured_cli.write_report, profiling)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.noop", description=__doc__, epilog=main.__doc__
    )
    parser.add_argument("shape", choices=["whole", "warehouse"], nargs="?", default="whole")
    parser.add_argument("--partitions", type=int, default=13)
    parser.add_argument("--runs", type=int, choices=[2, 3], default=2, help="whole: 2 or 3 runs")
    parser.add_argument("--checks", action="store_true", help="whole: with the pipeline's checks")
    parser.add_argument("--steps", default=WAREHOUSE_SHAPE, help="step:assets,... (warehouse)")
    args = parser.parse_args(argv)
    if args.shape == "whole":
        result = whole_floor(args.partitions, args.runs, args.checks)
    else:
        result = warehouse_floor(parse_steps(args.steps))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    code = main()
    # As football_assets.cli._leave_now: the exit handlers (the report), not the teardown.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    os._exit(code)
