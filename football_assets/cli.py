"""`football-assets`: a thin command line over Dagster's own APIs, against the user's instance.

football-assets refresh     materialize the whole graph for every competition
football-assets db stop     stop the embedded PostgreSQL (if one runs)
football-assets db url      print where the warehouse is (password hidden)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from football_assets.settings import DEFAULT_DAGSTER_HOME, ConfigError, Settings


def _dagster_home(config: Settings) -> Path:
    """Runs are recorded in $DAGSTER_HOME; default to a project-local one so `dagster dev`
    started with the same DAGSTER_HOME shows them."""
    home = config.dagster_home or Path(DEFAULT_DAGSTER_HOME).absolute()
    home.mkdir(parents=True, exist_ok=True)
    return home


def _warehouse(config: Settings) -> Any:
    """The warehouse for the CLI's own reads: plain values from the settings (runs get them as
    EnvVar references, so run storage never holds them)."""
    from football_assets.resources.warehouse import Warehouse

    return Warehouse(
        database_url=config.database_url,
        schema_name=config.db_schema,
        embedded_pgdata=str(config.embedded_pgdata),
    )


def refresh(config: Settings, output_dir: str | None = None) -> int:
    import dagster as dg

    from football_assets.assets.reporting import SUMMARY_FILE, summary_rows
    from football_assets.definitions import build_definitions
    from football_assets.refresh import refresh as run_refresh
    from football_assets.resources.output import OutputLocation
    from football_assets.settings import load

    if output_dir:
        config = load({**os.environ, "FOOTBALL_OUTPUT_DIR": output_dir})
    home = _dagster_home(config)
    output = OutputLocation(location=config.output_location)
    defs = build_definitions(summary_output=output, config=config)
    started = time.monotonic()
    origin = "the live API" if config.live else "the bundled snapshot (offline)"
    warehouse = _warehouse(config)
    try:
        print(f"football-assets: refreshing from {origin} into {warehouse.describe()}")
        print(f"football-assets: Dagster instance {home}")
        # Run logs go to stdout, so stderr carries only the one-line verdict on failure.
        with (
            contextlib.redirect_stderr(sys.stdout),
            dg.DagsterInstance.from_config(str(home)) as instance,
        ):
            report = run_refresh(defs, instance)

        summary = summary_rows(warehouse)
        zero = [
            f"{r['competition_name']} ({r['competition_id']})"
            for r in summary
            if not r["number_of_teams"]
        ]
        counts = ", ".join(
            f"{name}={warehouse.count_rows(name)}"
            for name in ("dim_competitions", "dim_teams", "fact_competitions")
        )
        schema = warehouse.schema
    finally:
        warehouse.dispose()
    path = output.uri(SUMMARY_FILE)
    print(f"Summary: {path} ({len(summary)} competitions; zero teams: {', '.join(zero) or 'none'})")
    print(f"Rows in schema {schema}: {counts}")
    calls = len(report.partitions) + 1
    what = "API requests" if config.live else "snapshot responses"
    print(
        f"Done in {time.monotonic() - started:.1f} s: {calls} {what}, "
        f"runs {', '.join(report.run_ids)}"
    )
    print(f"See it in the UI: DAGSTER_HOME={home} dagster dev   (http://127.0.0.1:3000)")
    return 0


def db_command(config: Settings, action: str) -> int:
    from football_assets.resources.postgres_server import embedded_status, stop_embedded_postgres

    if action == "stop":
        stopped = stop_embedded_postgres(config.embedded_pgdata)
        print(
            f"Stopped the embedded PostgreSQL in {config.embedded_pgdata}."
            if stopped
            else f"No embedded PostgreSQL runs in {config.embedded_pgdata}."
        )
        return 0
    if config.database_url:
        from football_assets.redaction import redact_database_url

        print(redact_database_url(config.database_url))
        return 0
    status = embedded_status(config.embedded_pgdata)
    print(status.url if status.running else f"embedded PostgreSQL in {status.pgdata} (stopped)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="football-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    refresh_parser = commands.add_parser(
        "refresh", help="materialize every asset, every competition"
    )
    refresh_parser.add_argument(
        "--output-dir", help="where summary.csv goes (default $FOOTBALL_OUTPUT_DIR or ./output)"
    )
    db_parser = commands.add_parser("db", help="the warehouse database")
    db_parser.add_argument("action", choices=["stop", "url"])
    args = parser.parse_args(argv)
    # The same .env that `dagster dev` reads; variables already set win over it.
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        from football_assets.settings import load

        config = load()
        if args.command == "refresh":
            return refresh(config, args.output_dir)
        return db_command(config, args.action)
    except Exception as exc:  # one line, never a traceback, for errors users can cause
        from football_assets.refresh import RefreshFailed
        from football_assets.resources.api_answers import FootballDataError
        from football_assets.resources.warehouse_errors import WarehouseError

        if isinstance(exc, RefreshFailed):
            print(f"football-assets: refresh failed at {exc} (run {exc.run_id})", file=sys.stderr)
            return 1
        if isinstance(exc, FootballDataError | WarehouseError | ConfigError):
            print(f"football-assets: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
