"""Ingestion layer: what the API said, kept verbatim (`raw_*`), versioned by content.

Each answer's data version is the SHA-256 of its canonical JSON, so Dagster (declarative
automation, staleness) sees a change exactly when the API said something new.

`raw_teams` is partitioned by competition and runs a range of competitions as one run (one
process, one HTTP session, one request budget). Dagster 1.13 gives every partition of a
batched output one data version (dagster-io/dagster#34013), which would make re-fetching one
unchanged competition look like a change to everything downstream. So `raw_teams` stores its
answers itself and reports one materialization per partition, each with that partition's own
data version and provenance, only once the answers are committed.

Size: over 300 lines, because raw_teams also checks itself in its step (a check in a step of its
own would wait for an output the asset never emits), so its two checks live beside it.
"""

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

from football_assets import progress
from football_assets.assets.labels import competitions_markdown, stored_team_counts
from football_assets.payloads import (
    PayloadError,
    competition_ids,
    parse_competitions,
    parse_teams,
)
from football_assets.policies import API_POOL, INGESTION, OWNERS
from football_assets.resources.api import FootballDataApi
from football_assets.resources.api_answers import ApiResponse
from football_assets.resources.raw_records import RawRecord, ResponseSpool
from football_assets.resources.warehouse import Warehouse

IO_MANAGER = "warehouse_io_manager"
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
    """Make the `competitions` partitions exactly the listed ids; return (added, removed)."""
    existing = set(instance.get_dynamic_partitions(PARTITIONS))
    added = [key for key in listed if key not in existing]
    removed = sorted(existing - set(listed), key=int)
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
    description="GET /competitions, verbatim; registers one raw_teams partition per competition.",
)
def raw_competitions(
    context: dg.AssetExecutionContext, football_api: FootballDataApi, warehouse: Warehouse
) -> dg.Output[ApiResponse]:
    response = football_api.fetch_competitions()
    _announce_source(context, response)
    try:
        listed = competition_ids(response.payload)
    except PayloadError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    if not listed:
        # Mirroring an empty list would empty every table and the report; no real plan lists
        # nothing, so this is an API fault to report, not data to apply.
        raise dg.Failure(
            f"GET {response.endpoint} listed no competitions; refusing to remove every "
            "competition from the warehouse. Check your plan at football-data.org and re-run.",
            allow_retries=False,
        )
    record = RawRecord.from_response("", response)
    added, removed = sync_competition_partitions(context.instance, listed)
    context.log.info(
        "The API lists %d competitions; partitions added: %s; removed: %s.",
        len(listed),
        ", ".join(added) or "none",
        ", ".join(removed) or "none",
    )
    return dg.Output(
        response,
        metadata={
            **response.metadata(),
            "competition_count": len(listed),
            "dagster/row_count": len(listed),  # the UI's row count: competitions listed
            "partitions_added": ", ".join(added) or "none",
            "partitions_removed": ", ".join(removed) or "none",
            "payload_sha256": record.payload_sha256,
            # The partitions are ids: this says which competition each is (teams as last fetched).
            "competitions": dg.MetadataValue.md(
                competitions_markdown(response.payload, stored_team_counts(warehouse, listed))
            ),
        },
        data_version=dg.DataVersion(record.payload_sha256),
    )


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
    description="GET /competitions/{id}/teams, verbatim, one partition per competition id.",
).with_io_manager_key(IO_MANAGER)


# Checked in the same step, as the answers are stored: the asset reports its partitions itself,
# so a check in a step of its own would wait on an output that never comes.
COMPETITIONS_HAVE_TEAMS = dg.AssetCheckSpec(
    "competitions_have_teams",
    asset=RAW_TEAMS.key,
    description="WARN when a listed competition has zero teams (normal between seasons).",
)
VALUES_FIT_POSTGRES = dg.AssetCheckSpec(
    "raw_teams_values_fit_postgres",
    asset=RAW_TEAMS.key,
    description="WARN when an answer held characters PostgreSQL cannot store (NUL, lone "
    "surrogates): the tables got them as U+FFFD, raw_responses keeps the answer verbatim.",
)


def listed_competitions(warehouse: Warehouse) -> dict[str, str]:
    """{competition id: name} of the latest stored competition list (empty when none)."""
    latest = warehouse.latest_raw("raw_competitions", [""])
    try:
        competitions = parse_competitions(latest[""]).competitions if latest else []
    except PayloadError:
        return {}
    return {str(c.id): c.name for c in sorted(competitions, key=lambda c: c.id)}


def check_competitions_have_teams(warehouse: Warehouse) -> dg.AssetCheckResult:
    listed = listed_competitions(warehouse)
    rows = warehouse.query_latest(
        "raw_teams",
        list(listed),
        "SELECT partition_key FROM latest WHERE jsonb_array_length(payload -> 'teams') = 0",
    )
    empty = sorted((r["partition_key"] for r in rows), key=int)
    names = [f"{listed[key]} ({key})" for key in empty]
    return dg.AssetCheckResult(
        check_name=COMPETITIONS_HAVE_TEAMS.name,
        passed=not names,
        severity=dg.AssetCheckSeverity.WARN,
        description=("Zero teams: " + ", ".join(names))
        if names
        else "Every competition has teams.",
        metadata={"zero_team_competitions": ", ".join(names) or "none", "count": len(names)},
    )


def check_values_fit_postgres(warehouse: Warehouse) -> dg.AssetCheckResult:
    # One row per replaced field, with the id of the team it belongs to ("teams.3.name" alone
    # would send a reader counting).
    rows = warehouse.query_latest(
        "raw_teams",
        list(listed_competitions(warehouse)),
        "SELECT partition_key, field, "
        "payload #>> ((string_to_array(field, '.'))[1:2] || '{id}'::text[]) AS team "
        "FROM latest, unnest(sanitized_fields) AS field",
    )
    found = [
        f"competition {r['partition_key']}: " + _where(r["field"], r["team"])
        for r in sorted(rows, key=lambda r: (int(r["partition_key"]), r["field"]))
    ]
    return dg.AssetCheckResult(
        check_name=VALUES_FIT_POSTGRES.name,
        passed=not found,
        severity=dg.AssetCheckSeverity.WARN,
        description=("Replaced characters in " + "; ".join(found))
        if found
        else "Every value fits PostgreSQL as sent.",
        metadata={
            "sanitized": "; ".join(found) or "none",
            "competitions": len({r["partition_key"] for r in rows}),
        },
    )


def _where(path: str, team: Any) -> str:
    """`team 5, field 'name'` for `teams.3.name` of team 5; the bare path for anything else."""
    parts = path.split(".")
    if team is not None and len(parts) >= 3 and parts[0] == "teams" and parts[1].isdigit():
        return f"team {team}, field '{'.'.join(parts[2:])}'"
    return f"field '{path}'"


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


def _warn_sanitized(
    context: dg.AssetExecutionContext, key: str, record: RawRecord, payload: dict[str, Any]
) -> None:
    for path in record.sanitized:
        parts = path.split(".")
        team = None
        if len(parts) >= 2 and parts[0] == "teams" and parts[1].isdigit():
            try:
                team = payload["teams"][int(parts[1])].get("id")
            except (IndexError, AttributeError, TypeError):
                team = None
        context.log.warning(
            "Competition %s: %s holds characters PostgreSQL cannot store (NUL or a lone "
            "surrogate); the tables get them replaced by U+FFFD, raw_responses keeps the answer "
            "verbatim (payload_exact).",
            key,
            _where(path, team),
        )


@dg.multi_asset(
    specs=[RAW_TEAMS],
    check_specs=[COMPETITIONS_HAVE_TEAMS, VALUES_FIT_POSTGRES],
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
    metadata: dict[str, dict[str, Any]] = {}
    try:
        for index, key in enumerate(keys):
            response = football_api.fetch_teams(key)
            if index == 0:
                _announce_source(context, response)
            where = f"raw_teams partition {key} (GET {response.endpoint})"
            try:
                teams = parse_teams(response.payload, where=where)
            except PayloadError as exc:
                # The API's answer itself is unusable: re-running the step asks again for the
                # same answer, so fail once, naming the competition, the team and the field.
                raise dg.Failure(str(exc), allow_retries=False) from None
            count = len(teams.teams)
            if count == 0:
                context.log.warning("Competition %s lists no teams (between seasons?).", key)
            record = spool.add(key, response)
            if record.sanitized:
                _warn_sanitized(context, key, record, response.payload)
            # Partition keys are ids; the name tells a reader of the Partitions tab which is which.
            name = (response.payload.get("competition") or {}).get("name")
            code = (response.payload.get("competition") or {}).get("code")
            metadata[key] = {
                **({"competition": name} if name else {}),
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
        stored = warehouse.append_raw("raw_teams", context.run_id, spool)
        shas = dict(spool.shas)
    finally:
        spool.close()
    context.log.info("Stored %d raw_teams answers in %s.raw_responses.", stored, warehouse.schema)
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
    yield check_competitions_have_teams(warehouse)
    yield check_values_fit_postgres(warehouse)
