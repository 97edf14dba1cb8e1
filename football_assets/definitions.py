"""The one place that wires assets, checks, resources and automation into `dg.Definitions`:
`defs` for `dg` and `dagster`, `build_definitions` for tests and the CLI with their resources."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from football_assets import build_info
from football_assets import settings as settings_module
from football_assets.assets import ingestion, reporting, warehouse
from football_assets.automation import AUTOMATION_SCHEDULES, AUTOMATION_SENSORS
from football_assets.checks import ALL_CHECKS
from football_assets.configured import build_football_api, build_output, build_warehouse
from football_assets.policies import IO_MANAGER
from football_assets.resources.api import FootballDataApi
from football_assets.resources.io_manager import WarehouseIOManager
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets.settings import Settings


def with_code_references(assets: Sequence[dg.AssetsDefinition]) -> list[Any]:
    """Each asset linked to the code that builds it: the file and line here; in an image built
    with its commit (build_info.py), that file at that commit in the repository."""
    # Dagster 1.13 calls code references beta and would say so in every process that loads
    # this module (code server, daemon, each run); they are its documented way to do this.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        referenced = dg.with_source_code_references(assets)
        if not (build_info.GIT_URL and build_info.GIT_COMMIT):
            return list(referenced)
        linked = dg.link_code_references_to_git(
            referenced,
            git_url=build_info.GIT_URL,
            git_branch=build_info.GIT_COMMIT,  # a commit id works wherever a branch does
            file_path_mapping=dg.AnchorBasedFilePathMapping(
                local_file_anchor=Path(__file__),
                file_anchor_path_in_repository="football_assets/definitions.py",
            ),
        )
    return list(linked)


def build_definitions(
    football_api: FootballDataApi | None = None,
    warehouse_resource: Warehouse | None = None,
    summary_output: OutputLocation | None = None,
    config: Settings | None = None,
) -> dg.Definitions:
    """The project's Definitions; tests and the CLI pass resources of their own."""
    config = config or settings_module.load()
    warehouse_resource = warehouse_resource or build_warehouse(config)
    resources: dict[str, Any] = {
        "football_api": football_api or build_football_api(config),
        "warehouse": warehouse_resource,
        IO_MANAGER: WarehouseIOManager(warehouse=warehouse_resource),
        "summary_output": summary_output or build_output(config),
    }
    return dg.Definitions(
        assets=with_code_references(
            [
                ingestion.raw_competitions,
                ingestion.raw_teams,
                warehouse.warehouse_tables,
                reporting.summary_csv,
            ]
        ),
        asset_checks=ALL_CHECKS,
        resources=resources,
        sensors=AUTOMATION_SENSORS,
        schedules=AUTOMATION_SCHEDULES,
        # A small, mostly sequential graph: steps in the run's own process cost milliseconds
        # each, where the default multiprocess executor starts a Python process (~1.5 s) per
        # step. Every way of launching a run (UI, `dagster asset materialize`, sensors) uses it.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
