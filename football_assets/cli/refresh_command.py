"""`football-assets refresh`: the runs of `refresh.refresh`, followed on screen; Dagster's log
lines go to a file (unless --verbose), and stderr gets only the one-line verdict."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import football_assets.cli.home as instance_home
from football_assets.cli.display import Display, JsonDisplay, PlainDisplay, RefreshState
from football_assets.cli.env_file import json_log_notice
from football_assets.cli.run_logs import file_handler, progress_feed, run_loggers
from football_assets.cli.stop import Stop, Stopped
from football_assets.log_format import json_line
from football_assets.progress import Phase
from football_assets.settings import Settings

DOING = {
    Phase.STARTING: "before the first run",
    Phase.COMPETITIONS: "while fetching the competition list",
    Phase.WAREHOUSE: "while loading the warehouse",
    Phase.SUMMARY: "while checking the tables and writing the summary",
}


def left_behind(state: RefreshState | None) -> str:
    """What an interrupted refresh leaves, as it is: the warehouse commits once, or not at all."""
    if state is not None and state.phase is Phase.DONE:
        return "after the refresh had finished; the warehouse and summary.csv are up to date"
    if state is not None and state.committed:
        return (
            f"{DOING[Phase.SUMMARY]}; the warehouse was already committed (it holds the new "
            "tables); summary.csv holds its previous or its new version, never a part. "
            "Re-run to be sure it is the new one."
        )
    doing = DOING.get(state.phase if state else Phase.STARTING, "")
    if state is not None and state.phase is Phase.TEAMS:
        doing = f"while fetching the teams ({state.fetched}/{state.total})"
    return (
        f"{doing}; nothing changed: the warehouse tables and summary.csv keep their previous "
        "contents. Re-run to refresh."
    )


def _display(
    config: Settings, verbose: bool, screen: TextIO, states: list[RefreshState]
) -> Display:
    from football_assets.resources.budget import safety_margin

    state = RefreshState(
        live_api=config.live,
        limit=config.requests_per_minute if config.live else None,
        window_seconds=config.rate_window_seconds,
        margin=safety_margin(config.rate_window_seconds) if config.live else 0.0,
    )
    states.append(state)
    if config.log_format == "json":
        return JsonDisplay(state, screen)
    if screen.isatty():
        from football_assets.cli.live import LiveDisplay

        return LiveDisplay(state, screen, verbose=verbose)
    return PlainDisplay(state, screen)


@contextlib.contextmanager
def _stderr(log_path: Path | None, display: Display) -> Iterator[None]:
    if log_path is not None:
        with instance_home.stderr_into(log_path):
            yield
    elif isinstance(display, PlainDisplay):  # --verbose without a terminal: log on stdout
        with contextlib.redirect_stderr(sys.stdout):
            yield
    else:  # --verbose on a terminal: the live display prints it above itself
        yield


def run(
    config: Settings,
    *,
    competitions: Sequence[str] | None,
    force: bool,
    verbose: bool,
    stop: Stop | None = None,
) -> int:
    """The refresh; on SIGINT/SIGTERM (or an interrupted run) raises Stopped saying what the
    interrupted refresh left behind."""
    states: list[RefreshState] = []
    try:
        return _refresh(config, competitions, force, verbose, stop or Stop(), states)
    except KeyboardInterrupt as exc:  # Stopped, or a run ended by an interrupt
        signum = exc.signum if isinstance(exc, Stopped) else None
        signum = signum or (stop.received() if stop else None) or signal.SIGINT
        raise Stopped(signum, left_behind(states[0] if states else None)) from None


def _refresh(
    config: Settings,
    competitions: Sequence[str] | None,
    force: bool,
    verbose: bool,
    stop: Stop,
    states: list[RefreshState],
) -> int:
    import dagster as dg

    from football_assets.assets.reporting import (
        SUMMARY_FILE,
        summary_rows,
        zero_team_competitions,
    )
    from football_assets.configured import build_output, build_warehouse, prepare_budget
    from football_assets.definitions import build_definitions
    from football_assets.refresh import RefreshFailed, UnknownCompetitions, refresh

    # The modules just loaded live as long as the process: out of the collector's sight, each
    # collection during the runs walks only what the runs create.
    gc.freeze()
    json_mode = config.log_format == "json"
    started = time.monotonic()
    budget_note = prepare_budget(config)  # before anything starts or is asked
    wrote = instance_home.prepare(
        config, on_wait=lambda text: print(f"football-assets: {text}", flush=True)
    )
    home = instance_home.dagster_home(config)
    output = build_output(config)
    warehouse = build_warehouse(config, for_runs=False)
    # The display writes to its own copy of stdout: Dagster points file descriptor 1 at each
    # step's compute log while the step runs, where a display has no business (nor a terminal).
    sys.stdout.flush()
    screen = os.fdopen(
        os.dup(sys.stdout.fileno()),
        "w",
        buffering=1,
        encoding=sys.stdout.encoding,
        errors="replace",
    )
    display = _display(config, verbose, screen, states)
    log_path = instance_home.new_log_file(home) if json_mode or not verbose else None
    log_file = file_handler(log_path) if log_path is not None else None
    origin = "the live API" if config.live else "the bundled snapshot (offline)"
    which = f"competitions {', '.join(competitions)}" if competitions else "every competition"
    if notice := json_log_notice(config, Path.cwd() / ".env"):  # before all else: it explains
        display.echo(notice)
    display.echo(f"football-assets: refreshing {which} from {origin} into {warehouse.describe()}")
    display.echo(f"football-assets: Dagster instance {home}")
    if wrote:
        display.echo(f"football-assets: {wrote}")
    if budget_note:
        display.echo(f"football-assets: {budget_note}")
    if force:
        display.echo("football-assets: --force: the tables and the report are rebuilt regardless")
    try:
        with (
            _stderr(log_path, display),
            instance_home.open_instance(
                home, on_wait=lambda text: display.echo(f"football-assets: {text}")
            ) as instance,
        ):
            loggers, run_config = run_loggers(
                display, json_mode and not instance_home.prints_json(instance), log_file
            )
            defs = dg.Definitions.merge(
                build_definitions(summary_output=output, config=config),
                dg.Definitions(loggers=loggers),
            )
            with progress_feed(display), display:
                report = refresh(
                    defs,
                    instance,
                    run_config,
                    competitions=competitions,
                    force=force,
                    echo=display.echo,
                    observer=display,
                    checkpoint=stop.check,
                )
                display.phase(Phase.DONE)  # also when the tables were skipped
        summary = summary_rows(warehouse)
        counts = {
            name: warehouse.count_rows(name)
            for name in ("dim_competitions", "dim_teams", "fact_competitions")
        }
        schema = warehouse.schema
    except (RefreshFailed, UnknownCompetitions):
        if log_path is not None:
            display.echo(f"football-assets: Dagster's log of this refresh: {log_path}")
        raise
    finally:
        warehouse.dispose()
        if log_file is not None:
            log_file.close()
        screen.close()
    zero = zero_team_competitions(summary)
    path = output.uri(SUMMARY_FILE)
    calls = len(report.partitions) + (0 if competitions else 1)
    what = ("API request" if config.live else "snapshot response") + ("s" if calls != 1 else "")
    seconds = time.monotonic() - started
    lines = [
        f"Summary: {path} ({len(summary)} competitions; zero teams: {', '.join(zero) or 'none'})",
        f"Rows in schema {schema}: " + ", ".join(f"{k}={v}" for k, v in counts.items()),
        f"Done in {seconds:.1f} s: {calls} {what}, runs {', '.join(report.run_ids)}",
    ]
    if log_path is not None:
        lines.append(f"Dagster's log of this refresh: {log_path}")
    lines.append(f"See it in the UI: football-assets ui   (or DAGSTER_HOME={home} dg dev)")
    if not json_mode:
        print("\n".join(lines), flush=True)
        return 0
    fields: dict[str, Any] = {
        "summary": path,
        "zero_team_competitions": zero,
        "rows": counts,
        "seconds": round(seconds, 2),
        "requests": calls,
        "run_ids": report.run_ids,
        "skipped": report.skipped,
        "log_file": str(log_path),
        "dagster_home": str(home),
    }
    for line in lines[:-1]:
        print(json_line(line), flush=True)
    print(json_line(lines[-1], **fields), flush=True)
    return 0
