"""`football-assets refresh | status | db | ui`: the commands' parser and one-line errors. Beside
settings.py the only module touching the environment: it hands it to `settings.load()` and psql."""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from football_assets.settings import ConfigError, Settings

if TYPE_CHECKING:
    from football_assets.cli.stop import Stop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="football-assets", description=(__doc__ or "").splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    refresh = commands.add_parser("refresh", help="materialize every asset, every competition")
    refresh.add_argument(
        "--output-dir", help="where summary.csv goes (default $FOOTBALL_OUTPUT_DIR or ./output)"
    )
    refresh.add_argument(
        "--competition",
        action="append",
        metavar="CODE|ID",
        help="refresh only this competition's teams and what depends on them: its code (PL, "
        "any case) or its id (2021); repeatable",
    )
    refresh.add_argument(
        "--force", action="store_true", help="rebuild the tables and the report even if unchanged"
    )
    refresh.add_argument(
        "--verbose", action="store_true", help="Dagster's log lines on the terminal, not a file"
    )
    status = commands.add_parser("status", help="what is in the warehouse and how old it is")
    status.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    db = commands.add_parser("db", help="the warehouse database")
    db.add_argument("action", choices=["stop", "url", "psql"])
    db.add_argument("--show-password", action="store_true", help="db url: print the password too")
    ui = commands.add_parser("ui", help="the Dagster UI on this instance, until Ctrl-C")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ui.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    ui.add_argument("--verbose", action="store_true", help="Dagster's log on the terminal")
    return parser


def _status(config: Settings, as_json: bool) -> int:
    # A short read: the collector would only walk the objects of the modules being imported
    # (Dagster's), about a tenth of status's time, to find nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        from football_assets.cli.status_screen import render
        from football_assets.status import collect

        result = collect(config)
    finally:
        if collecting:
            gc.enable()
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print("\n".join(render(result)))
    return 0


def _db(config: Settings, action: str, show_password: bool) -> int:
    from football_assets.cli import db

    if action == "stop":
        print(db.stop(config))
        return 0
    if action == "url":
        print(db.url(config, show_password=show_password))
        return 0
    argv, extra, note = db.psql_command(config)
    if note:
        print(note, flush=True)
    sys.stdout.flush()
    os.execve(argv[0], argv, {**os.environ, **extra})  # psql takes over this process


def _leave_now(code: int) -> None:
    """Exit without Python's teardown, which spends most of a second freeing the objects of the
    Dagster modules the command loaded. Safe after status and refresh: they closed what they
    opened (the instance, the warehouse, the log file), and the exit handlers still run."""
    atexit._run_exitfuncs()  # logging's flush among them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _one_line(exc: Exception) -> str | None:
    """The line for errors a user can cause and fix; None for bugs (they keep a traceback)."""
    if isinstance(exc, ConfigError):
        return str(exc)  # before the imports below, which load Dagster (~2 s) for nothing
    from football_assets.cli.ui import UiError

    if isinstance(exc, UiError):
        return str(exc)
    from football_assets.cli.db import PsqlMissing
    from football_assets.refresh import RefreshFailed, UnknownCompetitions
    from football_assets.resources.api_answers import FootballDataError
    from football_assets.resources.budget_store import BudgetStoreError
    from football_assets.resources.warehouse_errors import WarehouseError

    if isinstance(exc, RefreshFailed):
        return f"refresh failed at {exc} (run {exc.run_id})"
    if isinstance(exc, UnknownCompetitions):
        return f"{exc}; nothing was changed"
    if isinstance(exc, FootballDataError | WarehouseError | PsqlMissing | BudgetStoreError):
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from football_assets.cli.stop import stopping

    # From before the first line of output to the exit, SIGINT and SIGTERM stop the command.
    with stopping() as stop:
        code, finished = _command(argv, stop)
        if finished and argv is None:  # the program itself, not a caller in this process
            stop.leaving = True
            stop.restore_terminal()
            _leave_now(code)
    return code


def _command(argv: Sequence[str] | None, stop: Stop) -> tuple[int, bool]:
    """(exit code, whether the command closed everything it opened)."""
    from football_assets.cli.stop import Stopped

    try:
        args = _parser().parse_args(argv)
        # The same .env that `dagster dev` reads; variables already set win over it.
        from dotenv import load_dotenv

        from football_assets.settings import load

        load_dotenv(Path.cwd() / ".env", override=False)

        env = dict(os.environ)
        if getattr(args, "output_dir", None):
            env["FOOTBALL_OUTPUT_DIR"] = args.output_dir
        config = load(env)
        if args.command == "db":
            return _db(config, args.action, args.show_password), False
        if args.command == "ui":
            from football_assets.cli import ui

            return ui.run(config, env, host=args.host, port=args.port, verbose=args.verbose), False
        if args.command == "refresh":
            from football_assets.cli import refresh_command

            code = refresh_command.run(
                config,
                competitions=args.competition,
                force=args.force,
                verbose=args.verbose,
                stop=stop,
            )
        else:
            try:
                code = _status(config, args.json)
            except KeyboardInterrupt as exc:
                raise Stopped(stop.received() or signal.SIGINT, "status changes nothing") from exc
        return code, True
    except Stopped as stopped:
        print(f"football-assets: {stopped.line()}", file=sys.stderr, flush=True)
        return stopped.exit_code, True
    except Exception as exc:  # one line, never a traceback, for errors users can cause
        signum = stop.received()
        if signum is not None:  # whatever broke after a signal broke because of it
            print(f"football-assets: {Stopped(signum).line()}", file=sys.stderr, flush=True)
            return 128 + signum, True
        line = _one_line(exc)
        if line is None:
            raise
        print(f"football-assets: {line}", file=sys.stderr)
        return 1, False
    except KeyboardInterrupt:  # an interrupt without a signal seen here (a caller's)
        print("football-assets: interrupted", file=sys.stderr)
        return 130, False


__all__ = ["main"]
