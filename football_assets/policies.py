"""What the assets share: owners, groups, the API pool and run tags, retries, automation and
freshness; it imports no asset, so every asset module can import it."""

from __future__ import annotations

import sys
from datetime import timedelta

import dagster as dg

OWNERS = ["team:data-engineering"]

INGESTION = "ingestion"
WAREHOUSE = "warehouse"
REPORTING = "reporting"

# The key definitions.py binds the warehouse IO manager to.
IO_MANAGER = "warehouse_io_manager"

# One concurrency pool for every asset that spends the API budget. Deployments give it one slot
# at run granularity (deploy/dagster.yaml): a run containing any of these assets stays queued
# while another is in progress, whoever launched it; two at once could only wait on each
# other's share of the budget.
API_POOL = "football_api"
# A label on the runs the refresh, the sensor and the schedule start (the deployment also limits
# runs carrying it). Runs launched from the UI or by a backfill lack it; the pool holds them all.
API_RUN_TAGS = {"football/api": "true"}


# A refused or dropped database connection is mostly a blip (a restart, a failover), and each
# load is one transaction, so running the step again is safe: twice, after ~1 s then ~3 s.
# Not on the raw assets: the API client retries its own faults, and a step retry would spend
# the request budget again. Errors a retry cannot fix are raised with allow_retries=False.
class NeverOnInterrupt(dg.RetryPolicy):
    """A RetryPolicy that never retries an interrupt (SIGINT, SIGTERM: the user said stop).

    Dagster 1.13 turns an interrupt inside a step that has a retry policy into a retry
    (`op_execution_error_boundary`: "respect retry policy when interrupts occur"), asking the
    policy for the delay while it handles the interrupt; this policy's answer is the interrupt.
    """

    def calculate_delay(self, attempt_num: int) -> float:
        handling = sys.exc_info()[1]
        if isinstance(handling, KeyboardInterrupt | dg.DagsterExecutionInterruptedError):
            raise handling
        return float(super().calculate_delay(attempt_num))


DATABASE_RETRY = NeverOnInterrupt(
    max_retries=2, delay=1, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# Dagster's eager() (run when a dependency updates; never while a dependency is missing or in
# progress), except that a dependency counts as updated only when its data version changed.
# Each raw answer's data version is its payload's SHA-256, so an unchanged answer triggers
# nothing downstream.
DOWNSTREAM_CONDITION = (
    dg.AutomationCondition.eager()
    .replace("newly_updated", dg.AutomationCondition.data_version_changed())
    .with_label("eager_on_new_data")
)

# The daily schedule runs at 05:00 UTC; a table is current when a day's run has reached it.
# WARN two hours after a missed daily run would have landed (26 h), FAIL after a second day
# missed (50 h): one missed night is worth a look, two are an incident.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(hours=26), fail_window=timedelta(hours=50)
)
