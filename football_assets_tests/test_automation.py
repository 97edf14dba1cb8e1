"""The sensor, the schedule and declarative automation, evaluated against a real instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from football_assets.assets.ingestion import RAW_TEAMS
from football_assets.automation import (
    competition_partitions_sensor,
    contiguous_ranges,
    daily_refresh_schedule,
    new_competitions_sensor,
)
from football_assets.definitions import defs as project_defs
from football_assets.policies import API_RUN_TAGS, DOWNSTREAM_CONDITION
from football_assets.refresh import refresh
from football_assets.resources.api import FootballDataApi
from football_assets_tests.conftest import live_api
from test_support.api_double import FootballApiDouble, make_competition, make_team

# The recording's competitions by partition key (their codes), in id order (2000 ... 2152).
FREE_TIER = ["WC", "CL", "BL1", "DED", "BSA", "PD", "FL1", "ELC", "PPL", "EC", "SA", "PL", "CLI"]
FREE_TIER_IDS = [2000, 2001, 2002, 2003, 2013, 2014, 2015, 2016, 2017, 2018, 2019, 2021, 2152]
DOWNSTREAM = {
    "dim_competitions",
    "dim_teams",
    "fact_competitions",
    "dim_teams_history",
    "competition_membership_history",
    "summary_csv",
}


def tick(
    instance: dg.DagsterInstance, api: FootballDataApi, cursor: str | None
) -> tuple[dg.SensorResult | dg.SkipReason, str | None]:
    """One sensor tick as the daemon runs it: evaluate, then apply the partition requests."""
    # As a context manager, so the resource is set up and torn down as in a real tick.
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"football_api": api}
    ) as context:
        result = new_competitions_sensor(context)
    if isinstance(result, dg.SkipReason):
        return result, cursor
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result, result.cursor


def summarize(requests: list[dg.RunRequest]) -> list[tuple[str, ...]]:
    """(asset, partition or first..last) per run request, in order."""
    out: list[tuple[str, ...]] = []
    for request in requests:
        (key,) = request.asset_selection or []
        tags = request.tags
        if request.partition_key:
            out.append((key.to_user_string(), request.partition_key))
        elif ASSET_PARTITION_RANGE_START_TAG in tags:
            span = f"{tags[ASSET_PARTITION_RANGE_START_TAG]}..{tags[ASSET_PARTITION_RANGE_END_TAG]}"
            out.append((key.to_user_string(), span))
        else:
            out.append((key.to_user_string(),))
    return out


def added_keys(result: dg.SensorResult) -> list[str]:
    return [k for r in result.dynamic_partitions_requests or [] for k in r.partition_keys]


# ---- the sensor ---------------------------------------------------------------------------


def test_first_tick_registers_the_13_competitions_and_requests_their_runs(
    api_double: FootballApiDouble, limiter_dir: Path, instance: dg.DagsterInstance
) -> None:
    result, cursor = tick(instance, live_api(api_double, limiter_dir), None)

    assert isinstance(result, dg.SensorResult)
    assert added_keys(result) == FREE_TIER
    assert instance.get_dynamic_partitions("competitions") == FREE_TIER
    # The list itself (never materialized) and every competition's teams in ONE run.
    assert summarize(result.run_requests or []) == [
        ("raw_competitions",),
        ("raw_teams", "WC..CLI"),
    ]
    assert all(r.tags.items() >= API_RUN_TAGS.items() for r in result.run_requests or [])
    assert cursor == ",".join(FREE_TIER)
    assert api_double.count() == 1  # one request a tick, whatever it finds


def test_an_unchanged_list_requests_nothing(
    api_double: FootballApiDouble, limiter_dir: Path, instance: dg.DagsterInstance
) -> None:
    api = live_api(api_double, limiter_dir)
    _, cursor = tick(instance, api, None)

    result, second_cursor = tick(instance, api, cursor)

    assert isinstance(result, dg.SkipReason)
    assert "13 listed competitions are unchanged" in (result.skip_message or "")
    assert second_cursor == cursor
    assert instance.get_dynamic_partitions("competitions") == FREE_TIER
    assert api_double.count() == 2


def test_a_new_competition_is_the_only_one_registered_and_fetched(
    api_double: FootballApiDouble, limiter_dir: Path, instance: dg.DagsterInstance
) -> None:
    api = live_api(api_double, limiter_dir)
    _, cursor = tick(instance, api, None)
    # As if the first tick's runs had succeeded: every listed partition has its teams.
    for key in FREE_TIER:
        instance.report_runless_asset_event(dg.AssetMaterialization(RAW_TEAMS.key, partition=key))
    api_double.data.add_competition(
        make_competition(2999, "Liga Nova", "LNV"), teams=[make_team(99_001, "Nova FC")]
    )

    result, new_cursor = tick(instance, api, cursor)

    assert isinstance(result, dg.SensorResult)
    assert added_keys(result) == ["LNV"]
    assert instance.get_dynamic_partitions("competitions") == [*FREE_TIER, "LNV"]
    # raw_competitions must hold the new list too (the tables list only what it holds).
    assert summarize(result.run_requests or []) == [("raw_competitions",), ("raw_teams", "LNV")]
    assert new_cursor == ",".join([*FREE_TIER, "LNV"])


def test_a_vanished_competition_is_left_to_raw_competitions(
    api_double: FootballApiDouble, limiter_dir: Path, instance: dg.DagsterInstance
) -> None:
    api = live_api(api_double, limiter_dir)
    _, cursor = tick(instance, api, None)
    api_double.data.remove_competition(2013)

    result, _ = tick(instance, api, cursor)

    assert isinstance(result, dg.SensorResult)
    # The sensor only adds: removing is raw_competitions' job, which records what it removed.
    assert instance.get_dynamic_partitions("competitions") == FREE_TIER
    assert ("raw_competitions",) in summarize(result.run_requests or [])


def test_turning_the_sensor_on_after_a_refresh_starts_nothing(
    live_defs: dg.Definitions,
    api_double: FootballApiDouble,
    limiter_dir: Path,
    instance: dg.DagsterInstance,
    output_dir: Path,
) -> None:
    refresh(live_defs, instance)
    before = api_double.count()

    result, cursor = tick(instance, live_api(api_double, limiter_dir), None)

    # Its first tick only learns the list: raw_competitions holds this very answer (same data
    # version) and every partition has its teams.
    assert isinstance(result, dg.SensorResult)
    assert result.run_requests == [] and added_keys(result) == []
    assert cursor == ",".join(FREE_TIER)
    assert api_double.count() == before + 1


def test_an_empty_list_registers_nothing(
    api_double: FootballApiDouble, limiter_dir: Path, instance: dg.DagsterInstance
) -> None:
    for competition_id in FREE_TIER_IDS:
        api_double.data.remove_competition(competition_id)

    result, cursor = tick(instance, live_api(api_double, limiter_dir), None)

    assert isinstance(result, dg.SkipReason)
    assert cursor is None
    assert instance.get_dynamic_partitions("competitions") == []


def test_contiguous_ranges_make_one_run_per_run_of_neighbours() -> None:
    order = ["1", "2", "3", "4", "5", "6"]
    assert contiguous_ranges(["1", "2", "3"], order) == [("1", "3")]
    assert contiguous_ranges(["2", "4", "5"], order) == [("2", "2"), ("4", "5")]
    assert contiguous_ranges([], order) == []


# ---- the schedule -------------------------------------------------------------------------


def test_the_daily_schedule_refreshes_the_list_and_every_competition(
    instance: dg.DagsterInstance,
) -> None:
    instance.add_dynamic_partitions("competitions", FREE_TIER)
    context = dg.build_schedule_context(instance=instance)

    requests = list(daily_refresh_schedule(context))  # type: ignore[arg-type]

    assert summarize(requests) == [("raw_competitions",), ("raw_teams", "WC..CLI")]
    assert [r.run_key for r in requests] == ["raw_competitions", "raw_teams"]
    assert all(r.tags.items() >= API_RUN_TAGS.items() for r in requests)


def test_before_any_competition_is_known_the_schedule_fetches_the_list(
    instance: dg.DagsterInstance,
) -> None:
    requests = list(daily_refresh_schedule(dg.build_schedule_context(instance=instance)))  # type: ignore[arg-type]

    assert summarize(requests) == [("raw_competitions",)]


def test_automation_shows_with_its_defaults() -> None:
    repo = project_defs.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    schedule = repo.get_schedule_def("daily_refresh_schedule")

    # The two that spend the API budget start off; the one that only rebuilds tables starts on.
    assert sensors["new_competitions_sensor"].default_status == dg.DefaultSensorStatus.STOPPED
    assert sensors["new_competitions_sensor"].minimum_interval_seconds == 3600
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 5 * * *" and schedule.execution_timezone == "UTC"
    automation = sensors["default_automation_condition_sensor"]
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)


def test_the_tables_and_the_report_follow_their_upstream_and_raw_data_does_not() -> None:
    graph = project_defs.resolve_asset_graph()
    conditions = {
        key.to_user_string(): graph.get(key).automation_condition
        for key in graph.get_all_asset_keys()
    }
    assert {name for name, c in conditions.items() if c == DOWNSTREAM_CONDITION} == DOWNSTREAM
    # Raw data costs API requests: only the sensor, the schedule or a person fetch it.
    assert conditions["raw_competitions"] is None and conditions["raw_teams"] is None


# ---- declarative automation, evaluated ----------------------------------------------------


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, *keys: str, **kw: Any) -> None:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(k) for k in keys], **kw
    )
    assert result.success


class Evaluator:
    """Successive ticks of the automation sensor, each seeing what happened since the last."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursor: Any = None

    def requested(self) -> set[str]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        graph = self.defs.resolve_asset_graph()
        return {
            key.to_user_string()
            for key in graph.get_all_asset_keys()
            if result.get_requested_partitions(key)
        }


@pytest.fixture
def evaluated(
    live_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> Evaluator:
    """A refreshed warehouse, and an automation sensor that has seen it."""
    evaluator = Evaluator(live_defs, instance)
    assert evaluator.requested() == set()  # the first tick only records where things stand
    refresh(live_defs, instance)
    # A full refresh rebuilt the tables after the raw data: nothing left to do.
    assert evaluator.requested() == set()
    return evaluator


def test_an_unchanged_competition_list_rebuilds_nothing(
    evaluated: Evaluator, live_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    materialize(live_defs, instance, "raw_competitions")

    assert evaluated.requested() == set()


def test_a_changed_competition_list_rebuilds_everything_downstream_of_it(
    evaluated: Evaluator,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
) -> None:
    competition = api_double.data.competition(2021)
    assert competition is not None
    competition["name"] = "Premier League (renamed)"
    materialize(live_defs, instance, "raw_competitions")

    assert evaluated.requested() == DOWNSTREAM
    assert evaluated.requested() == set()  # requested once, not on every tick


def test_changed_teams_rebuild_the_team_tables_and_the_report_only(
    evaluated: Evaluator,
    live_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
) -> None:
    assert api_double.data.rename_team(57, "Arsenal (renamed)", competition_id=2021) == 1
    materialize(live_defs, instance, "raw_teams", partition_key="PL")

    # The three tables change together (one step, one transaction), so dim_competitions is
    # rebuilt with them; its data version, derived from the unchanged competition list, stays.
    assert evaluated.requested() == DOWNSTREAM


def test_a_daily_refresh_that_brings_nothing_new_rebuilds_nothing(
    evaluated: Evaluator, live_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    keys = instance.get_dynamic_partitions("competitions")
    # The two runs of daily_refresh_schedule, over the same unchanged answers.
    materialize(live_defs, instance, "raw_competitions")
    materialize(
        live_defs,
        instance,
        "raw_teams",
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
    )

    assert evaluated.requested() == set()


def test_one_unchanged_competition_fetched_again_rebuilds_nothing(
    evaluated: Evaluator, live_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    # After a refresh (one run over every partition), one competition fetched alone with the
    # same answer: its own data version is unchanged, so nothing downstream moves. With one
    # data version for the whole range (Dagster's default for a batch), it would look changed.
    materialize(live_defs, instance, "raw_teams", partition_key="PL")

    assert evaluated.requested() == set()


def test_each_partition_records_its_own_payloads_version(
    live_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    from dagster._core.definitions.data_version import DATA_VERSION_TAG

    refresh(live_defs, instance)
    versions = {}
    for key in ("BSA", "PL"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=RAW_TEAMS.key, asset_partitions=[key]), limit=1
        ).records
        materialization = records[0].asset_materialization
        assert materialization is not None
        tags = materialization.tags or {}
        sha = materialization.metadata["payload_sha256"].value
        assert tags[DATA_VERSION_TAG] == sha
        versions[key] = sha
    assert versions["BSA"] != versions["PL"]


def test_partition_discovery_asks_the_api_only_while_no_partition_exists(
    api_double: FootballApiDouble, limiter_dir: Path, instance: dg.DagsterInstance
) -> None:
    """On by default and ticking every 30 s: once partitions exist, its ticks are free."""
    api = live_api(api_double, limiter_dir)

    def discovery_tick() -> dg.SensorResult | dg.SkipReason:
        with dg.build_sensor_context(instance=instance, resources={"football_api": api}) as ctx:
            result = competition_partitions_sensor(ctx)
        if isinstance(result, dg.SensorResult):
            for request in result.dynamic_partitions_requests or []:
                assert isinstance(request, dg.AddDynamicPartitionsRequest)
                keys = list(request.partition_keys)
                instance.add_dynamic_partitions(request.partitions_def_name, keys)
        return result

    first = discovery_tick()
    assert isinstance(first, dg.SensorResult) and added_keys(first) == FREE_TIER
    assert api_double.count() == 1

    for _ in range(3):
        later = discovery_tick()
        assert isinstance(later, dg.SkipReason)
        assert "Competitions are registered" in (later.skip_message or "")
    assert api_double.count() == 1
    assert instance.get_dynamic_partitions("competitions") == FREE_TIER
