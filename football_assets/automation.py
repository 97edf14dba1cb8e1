"""What runs without anyone clicking: the partition-discovery sensor (on), the new-competitions
sensor and the daily schedule (off), and the declarative automation of the tables and report."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from football_assets.assets.ingestion import (
    PARTITIONS,
    RAW_TEAMS,
    competition_partitions,
    raw_competitions,
)
from football_assets.competition_keys import competition_keys
from football_assets.policies import API_RUN_TAGS
from football_assets.resources.api import FootballDataApi
from football_assets.resources.raw_records import payload_sha256

# New competitions appear a few times a year at most, and the daily schedule catches any the
# sensor missed. An hourly poll costs 24 of the free tier's 14,400 requests a day, and a tick
# never stalls a running refresh for more than one request.
SENSOR_INTERVAL_SECONDS = 60 * 60
# Partition discovery: quick on a fresh `dagster dev`, and free once partitions exist.
DISCOVERY_INTERVAL_SECONDS = 30

# After the night's last matches (Brasileirão ends around 02:00 UTC), before European mornings.
DAILY_CRON = "0 5 * * *"

# Named as Dagster names the sensor it would create, so docs and the UI match; declared here so
# it is on by default. It spends no API budget: it only reads the instance and starts runs of
# the tables, and only when raw data changed.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Rebuilds the tables and the report when the raw data they read changed.",
)


def contiguous_ranges(keys: Sequence[str], order: Sequence[str]) -> list[tuple[str, str]]:
    """`keys` as (first, last) ranges of neighbours in `order`: a range is one single run."""
    wanted = set(keys)
    ranges: list[tuple[str, str]] = []
    start: str | None = None
    previous: str | None = None
    for key in order:
        if key in wanted:
            start = start or key
            previous = key
        elif start is not None and previous is not None:
            ranges.append((start, previous))
            start = None
    if start is not None and previous is not None:
        ranges.append((start, previous))
    return ranges


def raw_teams_run_request(first: str, last: str) -> dg.RunRequest:
    """One run of raw_teams over the partitions first..last (its backfill policy is single-run)."""
    if first == last:
        return dg.RunRequest(
            asset_selection=[RAW_TEAMS.key], partition_key=first, tags=API_RUN_TAGS
        )
    return dg.RunRequest(
        asset_selection=[RAW_TEAMS.key],
        tags={
            **API_RUN_TAGS,
            ASSET_PARTITION_RANGE_START_TAG: first,
            ASSET_PARTITION_RANGE_END_TAG: last,
        },
    )


def _holds_answer(instance: dg.DagsterInstance, payload: Mapping[str, Any]) -> bool:
    """Whether raw_competitions' latest materialization is this very answer (its data version)."""
    latest = instance.get_latest_materialization_event(raw_competitions.key)
    materialization = latest.asset_materialization if latest else None
    if materialization is None:
        return False
    return (materialization.tags or {}).get(DATA_VERSION_TAG) == payload_sha256(payload)


@dg.sensor(
    minimum_interval_seconds=DISCOVERY_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Registers the competitions partitions when none are (a fresh instance), so "
        "'Materialize all' can backfill every competition. One GET /competitions, only then."
    ),
)
def competition_partitions_sensor(
    context: dg.SensorEvaluationContext, football_api: FootballDataApi
) -> dg.SensorResult | dg.SkipReason:
    if context.instance.get_dynamic_partitions(PARTITIONS):
        return dg.SkipReason("Competitions are registered; raw_competitions keeps them current.")
    listed = list(competition_keys(football_api.fetch_competitions().payload))
    if not listed:
        return dg.SkipReason("GET /competitions listed no competitions; nothing registered.")
    context.log.info("Registering %d competitions: %s.", len(listed), ", ".join(listed))
    return dg.SensorResult(
        dynamic_partitions_requests=[competition_partitions.build_add_request(listed)]
    )


@dg.sensor(
    target=dg.AssetSelection.assets(raw_competitions, RAW_TEAMS.key),
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    # Off until an operator turns it on: it spends the API key's budget and starts runs.
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Polls GET /competitions (one request a tick); registers new competitions as partitions "
        "and fetches their teams."
    ),
)
def new_competitions_sensor(
    context: dg.SensorEvaluationContext, football_api: FootballDataApi
) -> dg.SensorResult | dg.SkipReason:
    response = football_api.fetch_competitions()
    listed = list(competition_keys(response.payload))
    if not listed:
        # raw_competitions refuses such an answer too: it is an API fault, not "no competitions".
        return dg.SkipReason("GET /competitions listed no competitions; nothing registered.")
    cursor = ",".join(listed)
    if cursor == context.cursor:
        return dg.SkipReason(f"The {len(listed)} listed competitions are unchanged.")

    # Compare with the instance, not only the previous tick: raw_competitions registers
    # partitions too, and a partition registered but never fetched still needs its run.
    instance = context.instance
    registered = list(instance.get_dynamic_partitions(PARTITIONS))
    new = [key for key in listed if key not in set(registered)]
    fetched = instance.get_materialized_partitions(RAW_TEAMS.key)
    to_fetch = [key for key in listed if key not in fetched]

    run_requests: list[dg.RunRequest] = []
    # (Or partitions it would remove: keys of an instance keyed by ids before codes.)
    if not _holds_answer(instance, response.payload) or set(registered) - set(listed):
        # dim_competitions and the team tables list only what raw_competitions holds; it also
        # removes partitions of competitions no longer listed (this sensor only adds).
        run_requests.append(
            dg.RunRequest(asset_selection=[raw_competitions.key], tags=API_RUN_TAGS)
        )
    # New keys are appended to the partition order, so they form one range after the others.
    for first, last in contiguous_ranges(to_fetch, [*registered, *new]):
        run_requests.append(raw_teams_run_request(first, last))

    context.log.info(
        "The API lists %d competitions; new: %s; teams to fetch: %s; runs requested: %d.",
        len(listed),
        ", ".join(new) or "none",
        ", ".join(to_fetch) or "none",
        len(run_requests),
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[competition_partitions.build_add_request(new)] if new else [],
        cursor=cursor,
    )


@dg.schedule(
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    target=dg.AssetSelection.assets(raw_competitions, RAW_TEAMS.key),
    # Off until an operator turns it on, like the sensor: it spends N+1 requests a day.
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Daily: re-fetches the competition list and every competition's teams; the tables follow "
        "by declarative automation where the data changed."
    ),
)
def daily_refresh_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    # Two runs, as a run cannot mix an unpartitioned asset and a range of dynamic partitions.
    # Run keys make a retried tick launch nothing twice.
    yield dg.RunRequest(
        run_key="raw_competitions", asset_selection=[raw_competitions.key], tags=API_RUN_TAGS
    )
    keys = list(context.instance.get_dynamic_partitions(PARTITIONS))
    if keys:
        # Every registered competition in one run (one process, one HTTP session, one budget).
        # Competitions raw_competitions registers meanwhile are the sensor's, or tomorrow's.
        yield raw_teams_run_request(keys[0], keys[-1]).with_replaced_attrs(run_key="raw_teams")


AUTOMATION_SENSORS = [competition_partitions_sensor, new_competitions_sensor, automation_sensor]
AUTOMATION_SCHEDULES = [daily_refresh_schedule]
