"""Dagster's fixed cost: four empty materializations, shaped like the warehouse phase.

Run as `python -m benchmarks.noop` with DAGSTER_HOME set; prints the run id. The benchmark
reads the same step events for these as for the real steps, so the difference is the work.
"""

from __future__ import annotations

import dagster as dg


@dg.asset(group_name="benchmark_noop")
def noop_dim_competitions() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(group_name="benchmark_noop")
def noop_dim_teams() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(group_name="benchmark_noop", deps=[noop_dim_competitions, noop_dim_teams])
def noop_fact_competitions() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(group_name="benchmark_noop", deps=[noop_fact_competitions])
def noop_summary_csv() -> dg.MaterializeResult:
    return dg.MaterializeResult()


NOOP_STEPS = {
    "dim_competitions": "noop_dim_competitions",
    "dim_teams": "noop_dim_teams",
    "fact_competitions": "noop_fact_competitions",
    "summary_csv": "noop_summary_csv",
}

defs = dg.Definitions(
    assets=[noop_dim_competitions, noop_dim_teams, noop_fact_competitions, noop_summary_csv]
)


def main() -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    print(result.run_id)


if __name__ == "__main__":
    main()
