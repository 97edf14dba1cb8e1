"""Where a process's wall time goes: imports, the instance, runs, events, resources, SQL, HTTP.
`install()` times a few functions of Python's import system, Dagster, SQLAlchemy, psycopg and
requests (`benchmarks.phase_clock`); `report()` gives each phase's wall seconds since then."""

from __future__ import annotations

import gc
import inspect
import sys
import time
from typing import Any

from benchmarks.phase_clock import (
    EVENTS,
    HTTP,
    IMPORTS,
    INSTANCE,
    RESOURCES,
    RUN_CONTAINER,
    SCHEMA,
    SLEEP,
    WAREHOUSE_SQL,
    WRAPPERS,
    current,
    on_gc,
    start,
    timed,
)

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


def install() -> None:
    """Start the clock and time imports; patch the other targets as their modules load.

    A wrapper costs about a microsecond per call: thousands of calls per refresh, a few ms in
    all. Functions are patched when their module is first imported, so installing this first
    changes nothing about what is imported when. Targets that do not exist (another version of
    the code) are skipped, so the same profile runs against any checkout."""
    import _frozen_importlib  # type: ignore[import-not-found]

    start()
    find_and_load = getattr(_frozen_importlib, "_find_and_load")  # noqa: B009

    # CPython's import statement looks `_find_and_load` up on this module on every import of a
    # module not loaded yet, so replacing it times every real import, and lets us patch targets.
    def timed_find_and_load(name: str, import_: Any) -> Any:
        clock = current()
        entered = clock.enter(IMPORTS) if clock else False
        try:
            return find_and_load(name, import_)
        finally:
            if entered and clock:
                clock.exit()
                if TARGETS and not clock.stack:  # the outermost import is done
                    _patch_loaded()

    setattr(_frozen_importlib, "_find_and_load", timed_find_and_load)  # noqa: B010
    gc.callbacks.append(on_gc)
    original_sleep = time.sleep
    time.sleep = timed(original_sleep, SLEEP)  # type: ignore[assignment]
    _patch_loaded()


def report() -> dict[str, Any]:
    """Seconds per phase since install() (they add up to `traced_s`), and calls per phase."""
    clock = current()
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
