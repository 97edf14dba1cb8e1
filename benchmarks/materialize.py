"""Where users materialize: `dagster asset materialize` and the UI, default run config against
the in-process executor; `--materialize N` of `benchmarks.run` (`materialize_paths`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Checkout,
    Harness,
    all_run_ids,
    drop_schema,
    loadavg,
    measured,
    measured_cli,
    median,
    new_runs,
    open_instance,
    run_process,
    summary,
)
from benchmarks.webserver import MODULE, SELECTION, launch, webserver

DEFAULT_RATIO_TARGET = 1.5
# The instance's runs start at once, without a daemon (see materialize_paths).
INSTANCE_YAML = """\
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""

EXECUTOR_PROBE = (
    f"from {MODULE} import defs; "
    "print(defs.resolve_implicit_global_asset_job_def().executor_def.name)"
)


def forced_in_process(executor: str) -> tuple[dict[str, Any] | None, str]:
    """Run config forcing the in-process executor, and how, for this executor name."""
    if executor == "multi_or_in_process_executor":
        return {"execution": {"config": {"in_process": {}}}}, "execution.config.in_process"
    if executor == "in_process":
        return {}, "none needed: the code location's executor is in_process"
    return None, f"cannot be forced by run config ({executor})"


def _run_events(home: Path, run_id: str) -> dict[str, float]:
    """The run's RUN_START and RUN_SUCCESS timestamps, as the instance recorded them."""
    import dagster as dg

    with open_instance(home) as instance:
        stamps: dict[str, float] = {}
        kinds = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS}
        for entry in instance.all_logs(run_id, of_type=kinds):
            if entry.dagster_event_type is not None:
                stamps[entry.dagster_event_type.name] = entry.timestamp
    return stamps


def materialize_paths(
    codes: Sequence[Checkout],
    *,
    repetitions: int,
    database_url: str,
    harness: Harness,
    workdir: Path,
    timeout: float = 900.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Per checkout: a fresh instance and schema, filled by one offline `football-assets
    refresh` (the raw answers the warehouse assets read), then N repetitions, alternating which
    goes first, of

    - `dagster asset materialize -m football_assets.definitions --select` SELECTION, as is (the
      code location's executor) and with the in-process executor forced by run config
      (`execution: {config: {in_process: {}}}` where the executor is Dagster's default; where
      the code location's executor is in-process already, the forced run is the same command):
      the command's wall time, and the run's own;
    - the same selection launched through the webserver's GraphQL API (`launchRun`, what the
      UI's Materialize button sends) on `dagster-webserver` in its own process group on a free
      loopback port: launch to RUN_SUCCESS. The instance runs launches at once
      (DefaultRunCoordinator): `dagster dev`'s queue adds its dequeue interval (up to 5 s), the
      same for every executor."""
    result: dict[str, Any] = {"repetitions": repetitions, "selection": list(SELECTION)}
    checkouts: dict[str, Any] = {}
    for number, code in enumerate(codes):
        where = workdir / f"code{number}"
        home, output = where / "home", where / "output"
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
        schema = f"bench_materialize_{number}"
        env = harness.env(
            code,
            DAGSTER_HOME=str(home),
            XDG_STATE_HOME=str(where / "state"),
            DATABASE_URL=database_url,
            FOOTBALL_DB_SCHEMA=schema,
            FOOTBALL_OUTPUT_DIR=str(output),
        )
        drop_schema(database_url, schema)
        try:
            checkouts[code.label] = _one_checkout(
                code, env, home, where, repetitions, timeout, echo
            )
        finally:
            drop_schema(database_url, schema)
    result["checkouts"] = checkouts
    return result


def _one_checkout(
    code: Checkout,
    env: dict[str, str],
    home: Path,
    where: Path,
    repetitions: int,
    timeout: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    filled = measured(measured_cli("refresh"), code=code, env=env, cwd=where, timeout=timeout)
    if filled.returncode != 0:
        raise RuntimeError(filled.failure(f"{code.label}: the offline refresh filling the schema"))
    probe = run_process([sys.executable, "-c", EXECUTOR_PROBE], env=env, cwd=where, timeout=120)
    if probe.returncode != 0:
        raise RuntimeError(probe.failure(f"{code.label}: reading the code location's executor"))
    executor = probe.stdout.strip().splitlines()[-1]
    forced, how = forced_in_process(executor)
    modes: dict[str, dict[str, Any] | None] = {"default": None}
    if forced is not None:
        modes["in_process"] = forced
    config_files = {}
    for mode, config in modes.items():
        if config:
            path = where / f"{mode}.json"  # JSON is YAML, which -c reads
            path.write_text(json.dumps(config), encoding="utf-8")
            config_files[mode] = path
    cli: dict[str, dict[str, list[float]]] = {m: {"wall": [], "run": []} for m in modes}
    ui: dict[str, dict[str, list[float]]] = {
        m: {"launch_to_success": [], "launch_to_start": [], "run": []} for m in modes
    }
    loads: list[float] = []
    order = list(modes)
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", MODULE]
    command += ["--select", ",".join(SELECTION)]
    for rep in range(repetitions):
        for mode in order[rep % len(order) :] + order[: rep % len(order)]:
            before = all_run_ids(home)
            extra = ["-c", str(config_files[mode])] if mode in config_files else []
            loads.extend(loadavg()[:1])
            proc = run_process([*command, *extra], env=env, cwd=where, timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(proc.failure(f"{code.label}: dagster asset materialize"))
            (run,) = new_runs(home, before)
            if not run.success:
                raise RuntimeError(f"{code.label}: dagster asset materialize: run {run.run_id}")
            cli[mode]["wall"].append(proc.wall_s)
            cli[mode]["run"].append(run.wall_s)
            echo(
                f"[materialize {code.label} {rep + 1}/{repetitions}] CLI {mode}: "
                f"{proc.wall_s:.2f} s (run {run.wall_s:.2f} s)"
            )
    with webserver(env, where) as server:
        for rep in range(repetitions):
            for mode in order[rep % len(order) :] + order[: rep % len(order)]:
                loads.extend(loadavg()[:1])
                run_id, launched = launch(server, modes[mode] or {}, timeout)
                stamps = _run_events(home, run_id)
                success, start = stamps["RUN_SUCCESS"], stamps["RUN_START"]
                ui[mode]["launch_to_success"].append(success - launched)
                ui[mode]["launch_to_start"].append(start - launched)
                ui[mode]["run"].append(success - start)
                echo(
                    f"[materialize {code.label} {rep + 1}/{repetitions}] UI {mode}: "
                    f"{success - launched:.2f} s (run {success - start:.2f} s)"
                )
    out: dict[str, Any] = {
        "path": str(code.path),
        "executor": executor,
        "in_process_forced_by": how,
        "loadavg_1min": summary(loads) if loads else None,
        "cli": {m: {k: summary(v) for k, v in d.items()} for m, d in cli.items()},
        "webserver": {m: {k: summary(v) for k, v in d.items()} for m, d in ui.items()},
    }
    if "in_process" in modes:
        cli_ratio = (median(cli["default"]["wall"]) or 0) / (median(cli["in_process"]["wall"]) or 1)
        ui_ratio = (median(ui["default"]["launch_to_success"]) or 0) / (
            median(ui["in_process"]["launch_to_success"]) or 1
        )
        out["cli_default_over_in_process"] = round(cli_ratio, 3)
        out["webserver_default_over_in_process"] = round(ui_ratio, 3)
        out["within_target"] = cli_ratio <= DEFAULT_RATIO_TARGET and ui_ratio <= (
            DEFAULT_RATIO_TARGET
        )
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        f"Materialize {','.join(result['selection'])} ({result['repetitions']} repetitions, "
        "interleaved; medians in s):"
    ]
    for label, c in result["checkouts"].items():
        lines.append(
            f"  {label} (executor {c['executor']}; in-process: {c['in_process_forced_by']})"
        )
        for mode, d in c["cli"].items():
            lines.append(
                f"    CLI {mode}: {d['wall']['median_s']:.2f} wall, run {d['run']['median_s']:.2f}"
            )
        for mode, d in c["webserver"].items():
            lines.append(
                f"    GraphQL {mode}: {d['launch_to_success']['median_s']:.2f} launch->success "
                f"(to RUN_START {d['launch_to_start']['median_s']:.2f}, run "
                f"{d['run']['median_s']:.2f})"
            )
        if "cli_default_over_in_process" in c:
            lines.append(
                f"    default / in-process: CLI {c['cli_default_over_in_process']:.2f}, "
                f"GraphQL {c['webserver_default_over_in_process']:.2f}"
            )
    return "\n".join(lines)
