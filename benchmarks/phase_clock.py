"""The clock behind `benchmarks.phases`: the phases, exclusive wall time on the main thread,
and wrappers that time a function's calls, a generator's steps or a context manager's edges."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

IMPORTS = "imports"
GC = "garbage collection"
INSTANCE = "instance creation"
EVENTS = "events written"
RESOURCES = "resource setup"
SCHEMA = "warehouse connect + schema check"
WAREHOUSE_SQL = "warehouse SQL"
INSTANCE_SQL = "instance reads (SQLite)"
HTTP = "HTTP"
SLEEP = "sleeping (rate waits)"
RUN = "run: Dagster's execution"
OUTSIDE = "outside runs"
RUN_CONTAINER = "run"


class Clock:
    """Wall seconds per phase on the thread that started it (runs execute there; Dagster's
    pollers do not count). A phase's time is exclusive: the first phase entered keeps the clock
    until it returns (SQL inside writing an event counts as the event), except garbage
    collections and imports, which count as themselves wherever they happen (a collection of
    Dagster's large heap can take a tenth of a second, and strikes whatever allocates at that
    moment). Time inside a run that no phase claims is Dagster's own execution machinery
    ("run: Dagster's execution"), time outside any run is "outside runs"."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.started = self.last = time.perf_counter()
        self.started_at = time.time()  # the epoch, for the parent to tell start-up from exit
        self.stack: list[str] = []
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def current(self) -> str:
        if GC in self.stack:
            return GC
        if IMPORTS in self.stack:
            return IMPORTS
        for phase in self.stack:
            if phase != RUN_CONTAINER:
                return phase
        return RUN if self.stack else OUTSIDE

    def _tick(self) -> None:
        now = time.perf_counter()
        phase = self.current()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + (now - self.last)
        self.last = now

    def enter(self, phase: str) -> bool:
        if threading.get_ident() != self.thread:
            return False
        self._tick()
        self.stack.append(phase)
        self.counts[phase] = self.counts.get(phase, 0) + 1
        return True

    def exit(self) -> None:
        self._tick()
        self.stack.pop()

    def leave(self, phase: str) -> None:
        """End the innermost `phase`, wherever it is: a collection may start in the middle of
        this clock's own bookkeeping, so it is not always on top when it stops."""
        if phase in self.stack:
            self._tick()
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(phase)]


_clock: Clock | None = None


def start() -> Clock:
    """A new clock, the one every wrapper reports to from now on."""
    global _clock
    _clock = Clock()
    return _clock


def current() -> Clock | None:
    return _clock


def _sql_phase(args: tuple[Any, ...]) -> str:
    """SQLAlchemy serves both the Dagster instance (SQLite) and the warehouse (PostgreSQL)."""
    try:
        name = args[0].dialect.name
    except (AttributeError, IndexError):
        return WAREHOUSE_SQL
    return INSTANCE_SQL if name == "sqlite" else WAREHOUSE_SQL


def timed(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        clock = _clock
        if clock is None:
            return fn(*args, **kwargs)
        entered = clock.enter(_sql_phase(args) if phase == "sqlalchemy" else phase)
        try:
            return fn(*args, **kwargs)
        finally:
            if entered:
                clock.exit()

    return wrapper


def timed_steps(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
    """For a generator function: time each step of the generator, not the time between."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        inner = fn(*args, **kwargs)
        throw, value = False, None  # what to hand the inner generator next
        while True:
            clock = _clock
            entered = clock.enter(phase) if clock else False
            try:
                item = inner.throw(value) if throw else inner.send(value)
            except StopIteration as stop:
                return stop.value
            finally:
                if entered and clock:
                    clock.exit()
            try:
                throw, value = False, (yield item)
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:  # thrown in: hand it to the inner generator
                throw, value = True, exc

    return wrapper


def timed_cm(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
    """For a context manager function: time entering and leaving it, not its body."""

    class Timed:
        def __init__(self, cm: Any) -> None:
            self.cm = cm

        def __enter__(self) -> Any:
            clock = _clock
            entered = clock.enter(phase) if clock else False
            try:
                return self.cm.__enter__()
            finally:
                if entered and clock:
                    clock.exit()

        def __exit__(self, *exc: Any) -> Any:
            clock = _clock
            entered = clock.enter(phase) if clock else False
            try:
                return self.cm.__exit__(*exc)
            finally:
                if entered and clock:
                    clock.exit()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return Timed(fn(*args, **kwargs))

    return wrapper


WRAPPERS = {"call": timed, "gen": timed_steps, "cm": timed_cm}


def on_gc(event: str, info: dict[str, Any]) -> None:
    """Collections run in whichever thread allocated last: count the main thread's."""
    clock = _clock
    if clock is None or threading.get_ident() != clock.thread:
        return
    if event == "start":
        clock.enter(GC)
    else:
        clock.leave(GC)
