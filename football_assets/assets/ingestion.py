"""Ingestion: `raw_competitions` and `raw_teams[competition]`, the API's answers kept verbatim,
versioned by the SHA-256 of their canonical JSON; raw_teams reports a version per partition."""

import logging
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)

from football_assets import drift, progress
from football_assets.assets.ingestion_checks import (
    COMPETITIONS_HAVE_TEAMS,
    COMPETITIONS_NEW_FIELDS,
    COMPETITIONS_READ_FIELDS,
    TEAMS_NEW_FIELDS,
    TEAMS_READ_FIELDS,
    VALUES_FIT_POSTGRES,
    AnswerWatch,
    check_competitions_have_teams,
    check_values_fit_postgres,
    listed_competitions,
    log_news,
    named,
    new_fields_result,
    read_fields_result,
    warn_new_fields,
    warn_sanitized,
)
from football_assets.assets.labels import competitions_markdown, stored_team_counts
from football_assets.competition_keys import (
    UnknownCompetition,
    answer_is_about,
    competition_keys,
    competition_summary,
    ids_of,
    recorded_keys,
    renamed,
)
from football_assets.payloads import PayloadError, parse_teams
from football_assets.policies import API_POOL, INGESTION, IO_MANAGER, OWNERS
from football_assets.resources.api import FootballDataApi
from football_assets.resources.api_answers import ApiResponse
from football_assets.resources.raw_records import RawRecord, ResponseSpool
from football_assets.resources.warehouse import Warehouse

# Bump when what these assets store changes meaning (not for data: data has its own version).
RAW_CODE_VERSION = "1"

competition_partitions = dg.DynamicPartitionsDefinition(name="competitions")
PARTITIONS = "competitions"

_progress = logging.getLogger(progress.LOGGER)


def _announce_source(context: dg.AssetExecutionContext, response: ApiResponse) -> None:
    if response.source == "snapshot":
        context.log.warning(
            "OFFLINE: using the bundled snapshot of football-data.org recorded on %s, not the "
            "live API. Set FOOTBALL_DATA_API_KEY to fetch live data.",
            response.snapshot_date,
        )


def sync_competition_partitions(
    instance: dg.DagsterInstance, listed: list[str]
) -> tuple[list[str], list[str]]:
    """Make the `competitions` partitions exactly the listed keys; return (added, removed)."""
    existing = list(instance.get_dynamic_partitions(PARTITIONS))
    added = [key for key in listed if key not in set(existing)]
    removed = [key for key in existing if key not in set(listed)]
    if added:
        instance.add_dynamic_partitions(PARTITIONS, added)
    for key in removed:
        # Its history stays in the event log; it only stops being a target.
        instance.delete_dynamic_partition(PARTITIONS, key)
    return added, removed


@dg.asset(
    group_name=INGESTION,
    owners=OWNERS,
    kinds={"python", "postgres"},
    pool=API_POOL,
    io_manager_key=IO_MANAGER,
    code_version=RAW_CODE_VERSION,
    check_specs=[COMPETITIONS_NEW_FIELDS, COMPETITIONS_READ_FIELDS],
    description="GET /competitions, verbatim; registers one raw_teams partition per competition.",
)
def raw_competitions(
    context: dg.AssetExecutionContext, football_api: FootballDataApi, warehouse: Warehouse
) -> Iterator[dg.Output[ApiResponse] | dg.AssetCheckResult]:
    response = football_api.fetch_competitions()
    _announce_source(context, response)
    try:
        keys = competition_keys(response.payload)
    except PayloadError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    listed = list(keys)
    if not listed:
        # Mirroring an empty list would empty every table and the report; no real plan lists
        # nothing, so this is an API fault to report, not data to apply.
        raise dg.Failure(
            f"GET {response.endpoint} listed no competitions; refusing to remove every "
            "competition from the warehouse. Check your plan at football-data.org and re-run.",
            allow_retries=False,
        )
    record = RawRecord.from_response("", response)
    watch = AnswerWatch("raw_competitions", drift.COMPETITIONS)
    watch.see("", response.payload)
    watch.compare_with_previous(warehouse)
    where = f"GET {response.endpoint}"
    added, removed = sync_competition_partitions(context.instance, listed)
    context.log.info(
        "The API lists %d competitions; partitions added: %s; removed: %s.",
        len(listed),
        ", ".join(added) or "none",
        ", ".join(removed) or "none",
    )
    if moved := renamed(removed, keys):
        # Once: the old keys are gone now. Their answers still count (read per competition id).
        context.log.warning(
            "partitions renamed from ids to codes: %s (answers stored under the ids still count)",
            ", ".join(f"{old} → {new}" for old, new in moved.items()),
        )
    for paths in watch.news.values():
        warn_new_fields(context.log, where, paths)
    # Stored whatever the checks say: every answer the API gave is kept.
    yield dg.Output(
        response,
        metadata={
            **response.metadata(),
            "competition_count": len(listed),
            "dagster/row_count": len(listed),  # the UI's row count: competitions listed
            "partitions_added": ", ".join(added) or "none",
            "partitions_removed": ", ".join(removed) or "none",
            "partition_keys": dg.MetadataValue.json(keys),  # key -> id: what --competition reads
            "payload_sha256": record.payload_sha256,
            # Which competition each partition key is (teams as last fetched).
            "competitions": dg.MetadataValue.md(
                competitions_markdown(response.payload, stored_team_counts(warehouse, keys))
            ),
        },
        data_version=dg.DataVersion(record.payload_sha256),
    )
    # One answer, seen under the key "": named by its endpoint.
    yield new_fields_result(COMPETITIONS_NEW_FIELDS, {where: watch.news[""]} if watch.news else {})
    missing = {where: watch.missing[""]} if watch.missing else {}
    yield read_fields_result(COMPETITIONS_READ_FIELDS, missing)
    if missing:
        raise dg.Failure(drift.describe_missing(missing), allow_retries=False)


RAW_TEAMS = dg.AssetSpec(
    "raw_teams",
    group_name=INGESTION,
    owners=OWNERS,
    kinds={"python", "postgres"},
    partitions_def=competition_partitions,
    # Lineage: the competition list decides which partitions exist (it loads nothing from it).
    deps=[raw_competitions],
    code_version=RAW_CODE_VERSION,
    # Reported per partition below, not through an output (see the module docstring).
    skippable=True,
    description="GET /competitions/{id}/teams, verbatim, one partition per competition, keyed "
    "by its code (PL, BL1), or by its id where it has no code of its own.",
).with_io_manager_key(IO_MANAGER)


def _provenance(instance: dg.DagsterInstance) -> dict[str, str]:
    """The tags Dagster itself records for an input: raw_competitions' version and event."""
    records = instance.fetch_materializations(raw_competitions.key, limit=1).records
    if not records:
        return {}
    record = records[0]
    tags = (record.asset_materialization.tags if record.asset_materialization else None) or {}
    version = tags.get(DATA_VERSION_TAG)
    if version is None:
        return {}
    return {
        get_input_data_version_tag(raw_competitions.key): version,
        get_input_event_pointer_tag(raw_competitions.key): str(record.storage_id),
    }


@dg.multi_asset(
    specs=[RAW_TEAMS],
    check_specs=[COMPETITIONS_HAVE_TEAMS, VALUES_FIT_POSTGRES, TEAMS_NEW_FIELDS, TEAMS_READ_FIELDS],
    name="raw_teams",
    pool=API_POOL,
    # A range of competitions runs as one run: one process, one HTTP session, one budget.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def raw_teams(
    context: dg.AssetExecutionContext, football_api: FootballDataApi, warehouse: Warehouse
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    # Each answer goes to the spool as it arrives (compact, on disk past a few MB), so a range
    # of 4,000 competitions holds one parsed payload at a time, not 4,000.
    spool = ResponseSpool()
    keys = list(context.partition_keys)
    try:  # what to ask the API for: the id each key stands for in the stored list
        ids = ids_of(keys, listed_competitions(warehouse)[0] or recorded_keys(context.instance))
    except UnknownCompetition as exc:
        raise dg.Failure(f"raw_teams {exc}", allow_retries=False) from None
    metadata: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    watch = AnswerWatch("raw_teams", drift.TEAMS, ids=ids)
    try:
        for index, key in enumerate(keys):
            response = football_api.fetch_teams(str(ids[key]))
            if index == 0:
                _announce_source(context, response)
            where = f"raw_teams partition {key} (GET {response.endpoint})"
            try:
                teams = parse_teams(response.payload, where=where)
                answer_is_about(response.payload, ids[key], where)
            except PayloadError as exc:
                # The API's answer itself is unusable: re-running the step asks again for the
                # same answer, so fail once, naming the competition, the team and the field.
                raise dg.Failure(str(exc), allow_retries=False) from None
            count = len(teams.teams)
            watch.see(key, response.payload)
            record = spool.add(key, response)
            if record.sanitized:
                warn_sanitized(context.log, key, record, response.payload)
            # The name tells a reader of the Partitions tab which competition the key is.
            name = competition_summary(response.payload, "name")
            code = competition_summary(response.payload, "code")
            if name:
                names[key] = name
            metadata[key] = {
                **({"competition": name} if name else {}),
                "competition_id": ids[key],
                **({"competition_code": code} if code else {}),
                **response.metadata(),
                # Not dagster/row_count: the UI shows that as the asset's size, and this is one
                # competition's answer of many.
                "teams_in_this_competition": count,
                "payload_sha256": record.payload_sha256,
                **({"sanitized_fields": ", ".join(record.sanitized)} if record.sanitized else {}),
            }
            progress.fetched(
                _progress, "raw_teams", key, index + 1, len(keys), f"{name or key}: {count} teams"
            )
        watch.compare_with_previous(warehouse)  # before storing: the latest is the previous
        for key, paths in watch.news.items():  # on the partition's page too
            metadata[key]["new_fields"] = ", ".join(paths)
        for key, gone in watch.missing.items():
            metadata[key]["missing_read_fields"] = ", ".join(map(str, gone))
        stored = warehouse.append_raw("raw_teams", context.run.run_id, spool)
        shas = dict(spool.shas)
    finally:
        spool.close()
    context.log.info("Stored %d raw_teams answers in %s.raw_responses.", stored, warehouse.schema)
    log_news(context.log, watch, names)
    # Reported only now that every answer of the run is committed: a materialization never
    # points at data that is not there.
    provenance = _provenance(context.instance)
    for key in keys:
        yield dg.AssetMaterialization(
            asset_key=RAW_TEAMS.key,
            partition=key,
            metadata=metadata[key],
            tags={
                **provenance,
                CODE_VERSION_TAG: RAW_CODE_VERSION,
                DATA_VERSION_TAG: shas[key],
                DATA_VERSION_IS_USER_PROVIDED_TAG: "true",
            },
        )
    yield check_competitions_have_teams(warehouse, watch.emptied)
    yield check_values_fit_postgres(warehouse)
    yield new_fields_result(TEAMS_NEW_FIELDS, {named(k, names): p for k, p in watch.news.items()})
    missing = {named(k, names): p for k, p in watch.missing.items()}
    yield read_fields_result(TEAMS_READ_FIELDS, missing)
    if missing:
        # Stored and reported (the API did say it), but no table is built from it: the
        # warehouse step refuses such answers too, in whatever run it runs.
        raise dg.Failure(drift.describe_missing(missing), allow_retries=False)
