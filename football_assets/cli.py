"""`football-assets`: a thin command line over Dagster's own APIs, against the user's instance.

    football-assets refresh     materialize the whole graph for every competition
    football-assets db stop     stop the embedded PostgreSQL (if one runs)
    football-assets db url      print where the warehouse is (password hidden)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_DAGSTER_HOME = ".dagster_home"


class RefreshFailed(Exception):
    """A run of the refresh failed; str() is the one line to show the user."""


def _ensure_dagster_home() -> Path:
    """Runs are recorded in $DAGSTER_HOME; default to a project-local one so `dagster dev`
    started with the same DAGSTER_HOME shows them."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    path = Path(home or DEFAULT_DAGSTER_HOME).absolute()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(path)
    return path


def _failure_line(result: Any) -> str:
    """The user-facing line of the first failed step: our errors are one line already."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            # Dagster wraps user exceptions; the innermost cause is the one that says what to do.
            while error.cause is not None and error.cls_name in {
                "DagsterExecutionStepExecutionError",
                "DagsterExecutionHandleOutputError",
                "DagsterExecutionLoadInputError",
                "DagsterResourceFunctionError",
            }:
                error = error.cause
            message = error.message.strip().splitlines()[-1] if error.message else error.cls_name
            message = message.split(": ", 1)[1] if message.startswith(error.cls_name) else message
            return f"{event.step_key}: {message}"
    return "the run failed; see the run's logs in the Dagster UI"


def _run(job: Any, instance: Any, selection: list[str], tags: dict[str, str] | None = None) -> Any:
    import dagster as dg

    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(key) for key in selection],
        tags=tags or {},
        # Step-by-step DEBUG events stay in the instance; the terminal gets INFO and up.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    if not result.success:
        raise RefreshFailed(_failure_line(result))
    return result


def refresh(output_dir: str | None = None) -> int:
    home = _ensure_dagster_home()
    if output_dir:
        os.environ["FOOTBALL_OUTPUT_DIR"] = output_dir
    warnings.filterwarnings("ignore", category=Warning, module="dagster")
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from football_assets import settings
    from football_assets.assets.ingestion import competition_partitions
    from football_assets.assets.reporting import SUMMARY_FILE
    from football_assets.definitions import defs

    started = time.monotonic()
    job = defs.resolve_implicit_global_asset_job_def()
    resources = defs.resources or {}
    api = resources["football_api"]
    source = getattr(api, "source", "live")
    print(
        f"football-assets: refreshing from the {'bundled snapshot (offline)' if source == 'snapshot' else 'live API'}"
        f" into {resources['warehouse'].describe()}; Dagster instance {home}"  # type: ignore[attr-defined]
    )
    with dg.DagsterInstance.get() as instance:
        # 1. The competition list; it registers one raw_teams partition per competition.
        _run(job, instance, ["raw_competitions", "dim_competitions"])
        keys = instance.get_dynamic_partitions(competition_partitions.name or "")
        # 2. Every competition's teams in one run: one process, one session, one budget.
        if keys:
            _run(
                job,
                instance,
                ["raw_teams"],
                {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
            )
        # 3. The tables that need the teams, then the report.
        _run(job, instance, ["dim_teams", "fact_competitions", "summary_csv"])

    from football_assets.assets.reporting import summary_rows
    from football_assets.resources.warehouse import Warehouse

    warehouse: Warehouse = resources["warehouse"]  # type: ignore[assignment]
    counts = {
        name: warehouse.query(f'SELECT count(*) AS n FROM "{warehouse.schema}".{name}')[0]["n"]  # noqa: S608
        for name in ("dim_competitions", "dim_teams", "fact_competitions")
    }
    summary = summary_rows(warehouse)
    zero = [r["competition_name"] for r in summary if r["number_of_teams"] == 0]
    path = settings.output_dir() / SUMMARY_FILE
    print(f"Summary: {path} ({len(summary)} competitions" + (f"; zero teams: {', '.join(zero)}" if zero else "") + ")")
    print(
        "Rows: "
        + ", ".join(f"{warehouse.schema}.{name}={count}" for name, count in counts.items())
    )
    print(f"Done in {time.monotonic() - started:.1f} s over {len(keys) + 1} API requests.")
    print(f"Open the UI: DAGSTER_HOME={home} dagster dev   (then http://127.0.0.1:3000)")
    return 0


def db_command(action: str) -> int:
    from football_assets import settings
    from football_assets.resources.warehouse import stop_embedded_postgres

    if action == "stop":
        pgdata = settings.embedded_pgdata()
        stopped = stop_embedded_postgres(pgdata)
        print(f"Stopped the embedded PostgreSQL in {pgdata}." if stopped else f"No embedded PostgreSQL runs in {pgdata}.")
        return 0
    from football_assets.definitions import build_warehouse

    print(build_warehouse().describe())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="football-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    refresh_parser = commands.add_parser("refresh", help="materialize every asset, every competition")
    refresh_parser.add_argument("--output-dir", help="where summary.csv goes (default $FOOTBALL_OUTPUT_DIR or ./output)")
    db_parser = commands.add_parser("db", help="the warehouse database")
    db_parser.add_argument("action", choices=["stop", "url"])
    args = parser.parse_args(argv)
    try:
        if args.command == "refresh":
            return refresh(args.output_dir)
        return db_command(args.action)
    except RefreshFailed as exc:
        print(f"football-assets: refresh failed at {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, never a traceback, for errors users can cause
        from football_assets.resources.api import FootballDataError
        from football_assets.resources.warehouse import WarehouseError
        from football_assets.settings import ConfigError

        if isinstance(exc, FootballDataError | WarehouseError | ConfigError):
            print(f"football-assets: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
