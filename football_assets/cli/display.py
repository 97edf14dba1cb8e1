"""What `refresh` shows, from one `RefreshState` fed by the runs' log records: `PlainDisplay` lines
on a pipe, `JsonDisplay` objects with FOOTBALL_LOG_FORMAT=json (a terminal's: cli/live.py)."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from football_assets import progress
from football_assets.log_format import json_line
from football_assets.progress import Phase

STEP_PHASES = {"warehouse_tables": Phase.WAREHOUSE, "summary_csv": Phase.SUMMARY}
WAREHOUSE_STEPS = {"warehouse_tables"}
PHASES = (Phase.COMPETITIONS, Phase.TEAMS, Phase.WAREHOUSE, Phase.SUMMARY)
REASONS = {
    "budget": "the request budget ({why}) is spent",
    "server": "the API said no requests remain until its counter resets",
    "retry": "retrying ({why})",
}


def clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class Wait:
    ends: float  # monotonic
    seconds: float
    reason: str
    text: str  # why, as a user reads it
    endpoint: str
    position: str  # "teams 4/13": the request that waits


@dataclass
class RefreshState:
    """What the refresh is doing now, updated by events and read by the displays."""

    live_api: bool
    limit: int | None
    window_seconds: float
    margin: float = 0.0
    started: float = field(default_factory=time.monotonic)
    phase: Phase = Phase.STARTING
    failed: Phase | None = None  # where a run failed
    done: set[Phase] = field(default_factory=set)
    notes: dict[Phase, str] = field(default_factory=dict)  # per phase: what it did
    listed: int | None = None
    total: int | None = None  # competitions whose teams this refresh fetches
    fetched: int = 0
    detail: str = ""
    wait: Wait | None = None
    committed: bool = False  # the warehouse load committed in this refresh
    forecast: progress.RequestForecast = field(init=False)

    def __post_init__(self) -> None:
        self.forecast = progress.RequestForecast(self.limit, self.window_seconds, self.margin)

    def position(self) -> str:
        if self.phase is Phase.TEAMS and self.total is not None:
            return f"teams {min(self.fetched + 1, self.total)}/{self.total}"
        return "competitions 1/1"

    def remaining_requests(self) -> int | None:
        if self.total is None:
            return None
        return self.total - self.fetched

    def eta(self, now: float) -> float | None:
        """Seconds until the last API request has been answered; None while unknown."""
        remaining = self.remaining_requests()
        if remaining is None or self.phase is not Phase.TEAMS:
            return None
        not_before = self.wait.ends if self.wait else 0.0
        return max(0.0, self.forecast.finish_time(remaining, now, not_before) - now)

    def budget(self) -> str:
        if not self.live_api or self.limit is None:
            return "offline snapshot, no request budget"
        return f"{self.limit} requests per {self.window_seconds:g} s"


class Display:
    """Follows a refresh (a `progress.RefreshObserver`, and Dagster's events through
    `DagsterEventHandler`); subclasses decide what the user sees."""

    def __init__(self, state: RefreshState, out: TextIO | None = None) -> None:
        self.state = state
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self._warned: set[str] = set()
        self._pending: list[str] = []

    # -- events ---------------------------------------------------------------------------

    def phase(self, phase: Phase, total: int | None = None) -> None:
        with self._update():
            s, now = self.state, time.monotonic()
            if phase is Phase.TEAMS:
                s.total = total or 0
                if s.phase is Phase.COMPETITIONS:  # the competition list was fetched
                    s.forecast.request_sent(now)
                    s.forecast.waited()  # the next run's start-up is not the refresh's pace
                    s.listed = s.total
                    s.done.add(Phase.COMPETITIONS)
                    s.notes[Phase.COMPETITIONS] = f"{s.total} listed"
                    self.say(f"competitions 1/1 done: {s.total} competitions listed")
                else:
                    s.notes[Phase.COMPETITIONS] = "kept as stored (--competition)"
                self.say(f"teams: {s.total} competitions to fetch, one request each")
            elif phase is Phase.WAREHOUSE:
                s.done.add(Phase.TEAMS)
            elif phase is Phase.DONE:
                s.done.update(PHASES)
                s.notes.setdefault(
                    Phase.WAREHOUSE, "dim_competitions, dim_teams, fact_competitions"
                )
                s.notes.setdefault(Phase.SUMMARY, "summary.csv written")
            s.phase, s.wait = phase, None
            if phase is Phase.COMPETITIONS:
                self.say("competitions: GET /competitions")

    def skipped(self, reason: str) -> None:
        with self._update():
            self.state.notes[Phase.WAREHOUSE] = "skipped: unchanged since the last build"
            self.state.notes[Phase.SUMMARY] = "skipped"

    def failed(self, step: str, message: str) -> None:
        with self._update():
            self.state.failed = STEP_PHASES.get(step, self.state.phase)

    def step_started(self, step_key: str) -> None:
        phase = STEP_PHASES.get(step_key)
        if phase is None:
            return
        with self._update():
            s = self.state
            if phase is Phase.SUMMARY:
                s.committed = True  # the tables' step succeeded before the summary's starts
                s.done.add(Phase.WAREHOUSE)
                s.notes[Phase.WAREHOUSE] = "dim_competitions, dim_teams, fact_competitions loaded"
                self.say("summary: writing summary.csv")
            else:
                self.say("warehouse: loading dim_competitions, dim_teams, fact_competitions")
            s.phase = phase

    def materialized(self, step_key: str) -> None:
        """A step recorded a materialization: the tables' step does so after its commit."""
        if step_key in WAREHOUSE_STEPS:
            with self.lock:
                self.state.committed = True

    def fetched(self, fetched: progress.Fetched) -> None:
        with self._update():
            s, now = self.state, time.monotonic()
            s.fetched += 1
            s.forecast.request_sent(now)
            s.wait = None
            s.detail = fetched.detail
            total = s.total if s.total is not None else fetched.total
            eta = s.eta(now)
            self.say(
                f"teams {s.fetched}/{total} done: {s.detail}"
                + (f" (ETA {clock(eta)})" if eta is not None and s.fetched != total else "")
            )

    def waiting(self, wait: progress.Waiting) -> None:
        with self._update():
            s, now = self.state, time.monotonic()
            if wait.reason == "retry":
                text = wait.message
            else:
                text = REASONS.get(wait.reason, "{why}").format(why=wait.why)
            s.forecast.waited()
            s.wait = Wait(
                now + wait.seconds, wait.seconds, wait.reason, text, wait.endpoint, s.position()
            )
            self.say(
                f"wait {wait.seconds:.1f} s before {s.wait.position} (GET {s.wait.endpoint}): "
                f"{text}"
            )

    def warning(self, message: str) -> None:
        with self._update():
            if message in self._warned:
                return
            self._warned.add(message)
            self.say(f"warning: {message}")

    def echo(self, text: str) -> None:
        with self._update():
            self.say(text)

    @contextlib.contextmanager
    def _update(self) -> Iterator[None]:
        with self.lock:
            yield
        self.flush()

    def say(self, text: str) -> None:
        """Queue a line (under the lock); `flush` prints it once the lock is released, so a
        display redrawing from another thread never waits on a print, nor a print on it."""
        self._pending.append(text)

    def flush(self) -> None:
        with self.lock:
            lines, self._pending = self._pending, []
        for text in lines:
            self.line(text)

    def line(self, text: str) -> None:
        raise NotImplementedError

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class PlainDisplay(Display):
    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)


class JsonDisplay(Display):
    """Only the CLI's own lines, as JSON: the runs' events are on stdout as JSON already."""

    def line(self, text: str) -> None:
        if text.startswith("football-assets:"):
            print(json_line(text.removeprefix("football-assets: ")), file=self.out, flush=True)


class ProgressHandler(logging.Handler):
    """Hands the progress events of the API client and raw_teams to a display."""

    def __init__(self, display: Display) -> None:
        super().__init__(logging.DEBUG)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        event = progress.typed_event(record)
        if isinstance(event, progress.Fetched):
            self.display.fetched(event)
        elif isinstance(event, progress.Waiting) and record.levelno >= logging.INFO:
            self.display.waiting(event)  # a DEBUG wait is too short to show


class DagsterEventHandler(logging.Handler):
    """Behind a Dagster logger: each run's events and log records as Dagster sends them."""

    def __init__(self, display: Display) -> None:
        super().__init__(logging.DEBUG)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None)
        if not isinstance(meta, dict):
            return
        event = meta.get("dagster_event")
        if event is not None:
            if event.event_type_value == "STEP_START" and event.step_key:
                self.display.step_started(event.step_key)
            elif event.is_step_materialization and event.step_key:
                self.display.materialized(event.step_key)
        elif record.levelno >= logging.WARNING:
            self.display.warning(str(meta.get("orig_message") or record.getMessage()))
