"""Dagster's own timings of the measured runs, read back from their instance: runs, steps,
what each step materialized, and the events written."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

API_STEPS = ("raw_competitions", "raw_teams")


@dataclass
class RunTimes:
    run_id: str
    started: float
    ended: float
    steps: dict[str, tuple[float, float]]  # step key -> (start, success)
    materialized: dict[str, set[str]]  # step key -> asset keys it materialized
    success: bool = True

    @property
    def wall_s(self) -> float:
        return self.ended - self.started


def run_times(instance: dg.DagsterInstance, run_id: str) -> RunTimes:
    kinds = {
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
    }
    started = ended = 0.0
    success = False
    starts: dict[str, float] = {}
    steps: dict[str, tuple[float, float]] = {}
    materialized: dict[str, set[str]] = {}
    for entry in instance.all_logs(run_id, of_type=kinds):
        kind = entry.dagster_event_type
        if kind == dg.DagsterEventType.RUN_START:
            started = entry.timestamp
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            ended = entry.timestamp
            success = kind == dg.DagsterEventType.RUN_SUCCESS
        elif kind == dg.DagsterEventType.STEP_START and entry.step_key:
            starts[entry.step_key] = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_SUCCESS and entry.step_key:
            steps[entry.step_key] = (starts[entry.step_key], entry.timestamp)
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and entry.step_key:
            event = entry.dagster_event
            if event is not None and event.asset_key is not None:
                key = event.asset_key.to_user_string()
                materialized.setdefault(entry.step_key, set()).add(key)
    return RunTimes(run_id, started, ended, steps, materialized, success)


@contextmanager
def open_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def new_runs(home: Path, before: set[str]) -> list[RunTimes]:
    with open_instance(home) as instance:
        ids = [r.run_id for r in instance.get_runs() if r.run_id not in before]
        runs = [run_times(instance, run_id) for run_id in ids]
    return sorted(runs, key=lambda r: r.started)


def event_counts(home: Path) -> dict[str, int]:
    """How many events the instance's runs wrote, by type (`LOG` for log messages)."""
    counts: dict[str, int] = {}
    with open_instance(home) as instance:
        for record in instance.get_runs():
            for entry in instance.all_logs(record.run_id):
                kind = entry.dagster_event_type.name if entry.dagster_event_type else "LOG"
                counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def all_run_ids(home: Path) -> set[str]:
    if not home.exists():
        return set()
    with open_instance(home) as instance:
        return {r.run_id for r in instance.get_runs()}


def step(runs: list[RunTimes], key: str) -> tuple[float, float] | None:
    for run in runs:
        if key in run.steps:
            return run.steps[key]
    return None


def warehouse_steps(runs: list[RunTimes]) -> dict[str, int]:
    """The steps after the API that materialized assets (not checks), and how many each:
    `warehouse_tables` 3 and `summary_csv` 1 now, one step per table before."""
    found: dict[str, int] = {}
    for run in runs:
        for key, assets in run.materialized.items():
            if key not in API_STEPS and key in run.steps:
                found[key] = len(assets)
    return found


def api_phase_s(runs: list[RunTimes]) -> float | None:
    first, last = step(runs, API_STEPS[0]), step(runs, API_STEPS[1])
    return last[1] - first[0] if first and last else None


def step_seconds(runs: list[RunTimes], keys: Sequence[str]) -> dict[str, float]:
    found = {key: step(runs, key) for key in keys}
    return {key: round(t[1] - t[0], 4) for key, t in found.items() if t}
