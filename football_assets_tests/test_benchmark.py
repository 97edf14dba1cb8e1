"""The benchmark at the free tier's scale, as a correctness test: no timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.run import WAREHOUSE_STEPS, Scale, run_benchmark, table

FIELDS = [
    "scale",
    "pairs",
    "distinct_teams",
    "requests",
    "limit_per_window",
    "window_s",
    "api_floor_s",
    "wall_s",
    "api_s",
    "api_ratio",
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


@pytest.mark.slow
def test_the_benchmark_measures_13x20_and_the_data_is_exact(pg_url: str, tmp_path: Path) -> None:
    json_path = tmp_path / "results" / "latest.json"
    report = run_benchmark(
        [Scale.parse("13x20:10")],
        window=1.0,
        database_url=pg_url,
        workdir=tmp_path,
        json_path=json_path,
        echo=lambda _: None,
    )

    assert json.loads(json_path.read_text(encoding="utf-8")) == json.loads(json.dumps(report))
    (scale,) = report["scales"]
    missing = [f for f in FIELDS if scale.get(f) is None]
    assert not missing, missing
    assert scale["correct"], scale["problems"]
    assert (scale["pairs"], scale["requests"], scale["api_floor_s"]) == (260, 14, 1.0)
    assert scale["rows"] == 13 + scale["distinct_teams"] + 260
    assert scale["refused"] == 0
    cold, rerun = scale["passes"]["cold"], scale["passes"]["rerun"]
    assert cold["requests"] == rerun["requests"] == 14
    assert cold["rebuilt"] == sorted(WAREHOUSE_STEPS)
    assert set(cold["warehouse_steps_s"]) == set(WAREHOUSE_STEPS)
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
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
