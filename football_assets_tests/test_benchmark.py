"""The benchmark at the free tier's scale, as a correctness test: no timing is asserted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run as bench
from benchmarks.run import WAREHOUSE_STEPS, Scale, run_benchmark, table

FIELDS = [
    "scale",
    "code",
    "pairs",
    "distinct_teams",
    "requests",
    "limit_per_window",
    "window_s",
    "api_floor_s",
    "wall_s",
    "api_s",
    "api_ratio",
    "api_skeleton_s",
    "api_over_least",
    "refused",
    "request_span_s",
    "warehouse_s",
    "overhead_s",
    "warehouse_above_overhead_s",
    "rows",
    "copy_s",
    "warehouse_vs_copy",
    "warehouse_us_per_row",
    "peak_rss_mib",
    "rerun_skipped",
    "correct",
]
STAMPED = re.compile(r"^\d{8}T\d{6}Z(-\d+)?\.json$")


@pytest.mark.slow
def test_the_benchmark_measures_13x20_and_the_data_is_exact(pg_url: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    baseline = results / "latest.json"
    baseline.write_text('{"scales": ["the five-scale baseline"]}\n', encoding="utf-8")
    report = run_benchmark(
        [Scale.parse("13x20:10")],
        window=1.0,
        database_url=pg_url,
        workdir=tmp_path,
        results_dir=results,
        echo=lambda _: None,
    )

    # Without --update-baseline the run goes to a new file; the baseline is untouched.
    assert baseline.read_text(encoding="utf-8") == '{"scales": ["the five-scale baseline"]}\n'
    (written,) = [p for p in results.iterdir() if p != baseline]
    assert STAMPED.match(written.name), written.name
    assert report["json_path"] == str(written)
    stored = json.loads(written.read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps({k: v for k, v in report.items() if k != "json_path"}))
    assert stored["complete"] is True

    (scale,) = report["scales"]
    missing = [f for f in FIELDS if scale.get(f) is None]
    assert not missing, missing
    assert scale["correct"], scale["problems"]
    assert (scale["pairs"], scale["requests"], scale["api_floor_s"]) == (260, 14, 1.0)
    assert scale["rows"] == 13 + scale["distinct_teams"] + 260
    assert scale["refused"] == 0
    # Dagster alone (every asset and check a no-op, its runs only) takes less than the phase
    # that also fetches and waits for the API; the least that phase can take is the two added.
    assert 0 < scale["api_skeleton_s"] < scale["api_s"]
    cold, rerun = scale["passes"]["cold"], scale["passes"]["rerun"]
    assert cold["requests"] == rerun["requests"] == 14
    # The warehouse phase: the five tables (two of them history) in one step, then the report;
    # the no-op floor of the same shape.
    assert cold["rebuilt"] == sorted(WAREHOUSE_STEPS)
    assert set(cold["warehouse_steps_s"]) == set(WAREHOUSE_STEPS)
    assert cold["warehouse_shape"] == {"warehouse_tables": 5, "summary_csv": 1}
    # The rerun got byte-identical answers: it rebuilt nothing, and said why.
    assert scale["rerun_skipped"] and rerun["rebuilt"] == []
    assert "unchanged" in rerun["skip_message"]
    assert report["targets"]["rerun_rebuilds_nothing"] is True
    assert report["targets"]["zero_refused"] is True
    assert report["targets"]["data_correct"] is True
    assert report["machine"]["cpus"] >= 1 and report["machine"]["postgresql"]
    printed = table(report["scales"])
    assert "13x20" in printed and "10/1s" in printed
    # The scale's schema and the benchmark's scratch folder are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_results_go_to_a_new_file_unless_the_baseline_is_asked_for(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, 18, 5, 9, tzinfo=UTC)
    first = bench.results_path(results_dir=tmp_path, now=now)
    assert first == tmp_path / "20261201T180509Z.json"
    first.write_text("{}", encoding="utf-8")
    # A second run in the same second keeps the first one's file.
    assert bench.results_path(results_dir=tmp_path, now=now) == tmp_path / (
        "20261201T180509Z-2.json"
    )
    assert bench.results_path(results_dir=tmp_path, update_baseline=True) == (
        tmp_path / "latest.json"
    )
    assert bench.results_path(tmp_path / "mine.json", results_dir=tmp_path) == (
        tmp_path / "mine.json"
    )


def test_the_command_line_writes_the_baseline_only_when_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[dict[str, Any]] = []

    def fake_run(scales: list[Scale], **options: Any) -> dict[str, Any]:
        asked.append(options)
        raise SystemExit(0)  # what was asked is all this test wants

    monkeypatch.setattr(bench, "run_benchmark", fake_run)
    for argv in (["--scales", "13x20"], ["--scales", "13x20", "--update-baseline"]):
        with pytest.raises(SystemExit):
            bench.main(argv)
    assert [(o["update_baseline"], o["json_path"]) for o in asked] == [
        (False, None),
        (True, None),
    ]


def test_updating_the_baseline_refuses_to_drop_its_scales(tmp_path: Path) -> None:
    baseline = tmp_path / "latest.json"
    held = [
        {"scale": "13x20", "limit_per_window": 10, "window_s": 2.0},
        {"scale": "400x50", "limit_per_window": 40, "window_s": 20.0},
    ]
    baseline.write_text(json.dumps({"scales": held}), encoding="utf-8")
    with pytest.raises(SystemExit, match="400x50:40/20"):
        bench.refuse_to_shrink(baseline, [Scale.parse("13x20")], 2.0)
    # The same scales (or more) may replace it.
    bench.refuse_to_shrink(
        baseline, [Scale.parse("13x20"), Scale.parse("400x50:40/20"), Scale.parse("4000x50")], 2.0
    )


def test_the_no_op_floor_has_the_pipelines_shape_and_checks() -> None:
    # The floor the cold refresh is held against must keep up with the pipeline: a table or a
    # check added to the code and not to the floor would make the ratio blame our own work.
    from benchmarks import noop
    from football_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key.to_user_string(), []).append(check.name)
    tables = [key.to_user_string() for key in defs.resolve_assets_def("dim_teams").keys]
    assert len(tables) == noop.TABLES
    for raw, count in noop.RAW_CHECKS.items():
        assert len(checks[raw]) == count, raw
    schema = "column_schema_change"
    assert sorted(len([c for c in checks[t] if c != schema]) for t in tables) == sorted(
        noop.TABLE_CHECKS
    )
    assert all(schema in checks[t] for t in tables)
    assert len(checks["summary_csv"]) == noop.REPORT_CHECKS
    assert set(checks) == {*noop.RAW_CHECKS, *tables, "summary_csv"}
    # Each step is events of its own: the table checks' steps, by how many checks each holds.
    steps = [
        len([c for c in node.check_keys if c.asset_key.to_user_string() in tables])
        for node in graph.assets_defs
        if node.check_keys and not node.keys
    ]
    in_steps = [sum(noop.TABLE_CHECKS[t] for t in step) for step in noop.TABLE_CHECK_STEPS]
    schema_step = len(tables)
    assert sorted(n for n in steps if n) == sorted([*in_steps, schema_step])


@pytest.mark.slow
def test_a_signal_stops_the_benchmark_in_one_line(pg_url: str, tmp_path: Path) -> None:
    args = ["--scales", "13x20", "--database-url", pg_url, "--json", str(tmp_path / "r.json")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=bench.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first part has started
        assert line.startswith("[13x20"), line
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "benchmarks.run: interrupted (SIGTERM); only the parts finished before it were written "
        '(marked "complete": false)'
    ), err[-2000:]
    assert "Traceback" not in err
