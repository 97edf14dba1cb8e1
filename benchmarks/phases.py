"""Where a process's wall time goes: imports, the instance, runs, events, resources, SQL, HTTP.

`install()` wraps a few functions of Python's import system, Dagster, SQLAlchemy, psycopg and
requests with timers; `report()` gives each phase's wall seconds, which add up to the time from
`install()` to `report()`. The main thread only (runs execute there; Dagster's pollers do not
count). A phase's time is exclusive: the first phase entered keeps the clock until it returns
(SQL inside writing an event counts as the event), except garbage collections and imports,
which count as themselves wherever they happen (a collection of Dagster's large heap can take
a tenth of a second, and strikes whatever allocates at that moment). Time inside a run that no
phase claims is Dagster's own execution machinery ("run: Dagster's execution"), time outside
any run is "outside runs".

A wrapper costs about a microsecond per call: thousands of calls per refresh, a few ms in all.
Functions are patched when their module is first imported, so installing this first changes
nothing about what is imported when. Targets that do not exist (another version of the code)
are skipped, so the same profile runs against any checkout.
"""

from __future__ import annotations

import functools
import gc
import inspect
import sys
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

# module -> [(attribute path, phase, kind)]; kind: "call" times each call, "gen" each step of
# the generator it returns (resource setup and teardown happen while it is iterated).
TARGETS: dict[str, list[tuple[str, str, str]]] = {
    "dagster._core.instance.instance": [
        ("DagsterInstance.from_config", INSTANCE, "call"),
        ("DagsterInstance.get", INSTANCE, "call"),
        ("DagsterInstance.ephemeral", INSTANCE, "call"),
        ("DagsterInstance.handle_new_event", EVENTS, "call"),
    ],
    "dagster._core.definitions.job_definition": [
        ("JobDefinition.execute_in_process", RUN_CONTAINER, "call"),
    ],
    "dagster._core.execution.resources_init": [
        ("resource_initialization_event_generator", RESOURCES, "gen"),
    ],
    "dagster._core.execution.build_resources": [
        ("build_resources", RESOURCES, "cm"),
    ],
    "football_assets.resources.warehouse": [("Warehouse.get_engine", SCHEMA, "call")],
    "sqlalchemy.engine.base": [("Connection._execute_context", "sqlalchemy", "call")],
    "psycopg.cursor": [
        ("Cursor.execute", WAREHOUSE_SQL, "call"),
        ("Cursor.executemany", WAREHOUSE_SQL, "call"),
        ("Cursor.fetchall", WAREHOUSE_SQL, "call"),
    ],
    "psycopg.copy": [
        ("Copy.write_row", WAREHOUSE_SQL, "call"),
        ("Copy.write", WAREHOUSE_SQL, "call"),
        ("Copy.__exit__", WAREHOUSE_SQL, "call"),
    ],
    "psycopg.connection": [
        ("Connection.connect", WAREHOUSE_SQL, "call"),
        ("Connection.commit", WAREHOUSE_SQL, "call"),
        ("Connection.rollback", WAREHOUSE_SQL, "call"),
    ],
    "requests.sessions": [("Session.send", HTTP, "call")],
}


class Clock:
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


def _sql_phase(args: tuple[Any, ...]) -> str:
    """SQLAlchemy serves both the Dagster instance (SQLite) and the warehouse (PostgreSQL)."""
    try:
        name = args[0].dialect.name
    except (AttributeError, IndexError):
        return WAREHOUSE_SQL
    return INSTANCE_SQL if name == "sqlite" else WAREHOUSE_SQL


def _timed(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
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


def _timed_steps(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
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


def _timed_cm(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
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


WRAPPERS = {"call": _timed, "gen": _timed_steps, "cm": _timed_cm}


def _patch(module: Any, path: str, phase: str, kind: str) -> None:
    owner: Any = module
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            return
    if inspect.isclass(owner):
        for klass in owner.__mro__:  # patch where it is defined, for subclasses too
            if name in klass.__dict__:
                owner = klass
                break
        else:
            return
        raw = owner.__dict__[name]
    else:
        raw = getattr(owner, name, None)
        if raw is None:
            return
    wrap = WRAPPERS[kind]
    if isinstance(raw, classmethod):
        setattr(owner, name, classmethod(wrap(raw.__func__, phase)))
    elif isinstance(raw, staticmethod):
        setattr(owner, name, staticmethod(wrap(raw.__func__, phase)))
    else:
        setattr(owner, name, wrap(raw, phase))


def _patch_loaded() -> None:
    for module_name in list(TARGETS):
        module = sys.modules.get(module_name)
        if module is not None:
            for path, phase, kind in TARGETS.pop(module_name):
                _patch(module, path, phase, kind)


def _on_gc(event: str, info: dict[str, Any]) -> None:
    """Collections run in whichever thread allocated last: count the main thread's."""
    clock = _clock
    if clock is None or threading.get_ident() != clock.thread:
        return
    if event == "start":
        clock.enter(GC)
    else:
        clock.leave(GC)


def install() -> None:
    """Start the clock and time imports; patch the other targets as their modules load."""
    global _clock
    import _frozen_importlib  # type: ignore[import-not-found]

    _clock = Clock()
    find_and_load = getattr(_frozen_importlib, "_find_and_load")  # noqa: B009

    # CPython's import statement looks `_find_and_load` up on this module on every import of a
    # module not loaded yet, so replacing it times every real import, and lets us patch targets.
    def timed_find_and_load(name: str, import_: Any) -> Any:
        clock = _clock
        entered = clock.enter(IMPORTS) if clock else False
        try:
            return find_and_load(name, import_)
        finally:
            if entered and clock:
                clock.exit()
                if TARGETS and not clock.stack:  # the outermost import is done
                    _patch_loaded()

    setattr(_frozen_importlib, "_find_and_load", timed_find_and_load)  # noqa: B010
    gc.callbacks.append(_on_gc)
    original_sleep = time.sleep
    time.sleep = _timed(original_sleep, SLEEP)  # type: ignore[assignment]
    _patch_loaded()


def report() -> dict[str, Any]:
    """Seconds per phase since install() (they add up to `traced_s`), and calls per phase."""
    clock = _clock
    if clock is None:
        return {}
    _patch_loaded()
    now = time.perf_counter()
    clock._tick()
    return {
        "traced_s": round(now - clock.started, 4),
        "installed_at": clock.started_at,
        "reported_at": time.time(),
        "seconds": {k: round(v, 4) for k, v in sorted(clock.seconds.items())},
        "calls": dict(sorted(clock.counts.items())),
    }
