"""Ingestion layer: what the API said, kept verbatim (`raw_*`)."""

import dagster as dg

from football_assets.resources.api import ApiResponse, FootballDataApi
from football_assets.resources.raw_spool import ResponseSpool
from football_assets.resources.warehouse import payload_sha256
from football_assets.transforms import competition_ids, parse_teams

GROUP = "ingestion"
OWNERS = ["team:data-engineering"]
API_POOL = "football_api"  # one concurrency pool for every asset that spends the API budget

competition_partitions = dg.DynamicPartitionsDefinition(name="competitions")


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
    existing = set(instance.get_dynamic_partitions(competition_partitions.name or ""))
    added = [key for key in listed if key not in existing]
    removed = sorted(existing - set(listed), key=int)
    if added:
        instance.add_dynamic_partitions(competition_partitions.name or "", added)
    for key in removed:
        # Its history stays in the event log; it only stops being a target.
        instance.delete_dynamic_partition(competition_partitions.name or "", key)
    return added, removed


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "postgres"},
    pool=API_POOL,
    io_manager_key="warehouse_io_manager",
    description="GET /competitions, verbatim; registers one raw_teams partition per competition.",
)
def raw_competitions(
    context: dg.AssetExecutionContext, football_api: FootballDataApi
) -> dg.Output[ApiResponse]:
    response = football_api.fetch_competitions()
    _announce_source(context, response)
    listed = competition_ids(response.payload)
    if not listed:
        # Mirroring an empty list would empty every table and the report; no real plan lists
        # nothing, so this is an API fault to report, not data to apply.
        raise dg.Failure(
            f"GET {response.endpoint} listed no competitions; refusing to remove every "
            "competition from the warehouse. Check your plan at football-data.org and re-run."
        )
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
        },
        data_version=dg.DataVersion(payload_sha256(response.payload)),
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "postgres"},
    pool=API_POOL,
    io_manager_key="warehouse_io_manager",
    partitions_def=competition_partitions,
    # Lineage: the competition list decides which partitions exist (it loads nothing from it).
    deps=[raw_competitions],
    # A range of competitions runs as one run: one process, one HTTP session, one budget.
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="GET /competitions/{id}/teams, verbatim, one partition per competition id.",
)
def raw_teams(
    context: dg.AssetExecutionContext, football_api: FootballDataApi
) -> dg.Output[ResponseSpool]:
    # Each answer goes to the spool as it arrives (compact, on disk past a few MB), so a range
    # of 4,000 competitions holds one parsed payload at a time, not 4,000.
    responses = ResponseSpool()
    for index, key in enumerate(context.partition_keys):
        response = football_api.fetch_teams(key)
        if index == 0:
            _announce_source(context, response)
        teams = parse_teams(
            response.payload, where=f"raw_teams partition {key} (GET {response.endpoint})"
        )
        count = len(teams.teams)
        if count == 0:
            context.log.warning("Competition %s lists no teams (between seasons?).", key)
        # Partition keys are ids; the name lets a reader of the Partitions tab know which is which.
        name = (response.payload.get("competition") or {}).get("name")
        named = {"competition": name} if name else {}
        record = responses.add(key, response)
        context.add_asset_metadata(
            {
                **named,
                **response.metadata(),
                "team_count": count,
                "dagster/row_count": count,
                "payload_sha256": record.payload_sha256,
            },
            partition_key=key,
        )
    # Dagster 1.13 gives every partition of one output the same data version (no per-partition
    # versions for materializations: dagster-io/dagster#34013), so this is the version of the
    # whole range: it changes when any partition's payload does, which is what the tables built
    # from all of them need. Each partition's own version is its `payload_sha256` metadata.
    return dg.Output(responses, data_version=dg.DataVersion(responses.version()))
