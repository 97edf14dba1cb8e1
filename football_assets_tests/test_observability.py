"""What an operator reads: JSON log lines and every materialization's metadata."""

# No `from __future__ import annotations`: Dagster reads the asset's `context` annotation.
import json
import logging
import sys
from pathlib import Path

import dagster as dg
import pytest

from football_assets.log_format import DagsterJsonFormatter, json_stdout_handler, log_format
from football_assets.refresh import refresh
from football_assets.settings import ConfigError
from football_assets_tests.conftest import TEST_KEY
from test_support.refresh_process import cli, user_env

TABLES = ["dim_competitions", "dim_teams", "fact_competitions"]


def run_with_json_handler(instance_dir: Path) -> str:
    """Materialize a tiny asset on an instance whose python_logs name our handler factory."""

    @dg.asset
    def tiny(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        logging.getLogger("football_assets.api").info("GET %s", "/competitions")
        context.log.info("from the context")
        return dg.MaterializeResult(metadata={"dagster/row_count": 1})

    overrides = {
        "python_logs": {
            "python_log_level": "DEBUG",
            "managed_python_loggers": ["football_assets"],
            "dagster_handler_config": {
                "handlers": {
                    "json": {
                        "()": "football_assets.log_format.json_stdout_handler",
                        "level": "DEBUG",
                    }
                }
            },
        }
    }
    with dg.instance_for_test(temp_dir=str(instance_dir), overrides=overrides) as instance:
        result = dg.materialize([tiny], instance=instance)
        assert result.success
        return result.run_id


def test_json_lines_name_run_step_event_and_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FOOTBALL_LOG_FORMAT", "json")
    run_id = run_with_json_handler(tmp_path)

    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines and all({"timestamp", "level", "logger", "message"} <= set(e) for e in lines)
    assert all(e["run_id"] == run_id for e in lines)
    api = [e for e in lines if e["logger"] == "football_assets.api"]
    # The message as logged, Dagster's "job - run id - step -" prefix turned into fields.
    assert api and api[0]["message"] == "GET /competitions" and api[0]["step_key"] == "tiny"
    materialized = [e for e in lines if e.get("event_type") == "ASSET_MATERIALIZATION"]
    assert materialized and materialized[0]["asset_key"] == "tiny"
    assert lines[0]["timestamp"].endswith("Z")
    # Dagster's internals (the event object, every run tag) stay out of the line.
    assert not any({"dagster_meta", "dagster_event", "job_tags"} & set(e) for e in lines)


def test_without_the_json_format_the_handler_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FOOTBALL_LOG_FORMAT", raising=False)
    run_with_json_handler(tmp_path)

    assert "{" not in capsys.readouterr().out
    assert isinstance(json_stdout_handler(), logging.NullHandler)


@pytest.mark.parametrize(
    ("value", "expected"), [("", "text"), ("colored", "text"), ("JSON", "json")]
)
def test_log_format_values(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("FOOTBALL_LOG_FORMAT", value)
    assert log_format() == expected


def test_an_unknown_log_format_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTBALL_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="FOOTBALL_LOG_FORMAT='xml' is not a log format"):
        log_format()


def test_a_plain_record_keeps_its_extra_fields_and_traceback() -> None:
    formatter = DagsterJsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "football_assets.api", logging.ERROR, __file__, 1, "failed %s", ("GET",), sys.exc_info()
        )
    record.endpoint = "/competitions"

    line = json.loads(formatter.format(record))

    assert line["message"] == "failed GET" and line["endpoint"] == "/competitions"
    assert line["level"] == "ERROR" and "ValueError: boom" in line["exc_info"]


def test_every_materialization_carries_row_count_and_tables_their_schema(
    live_defs: dg.Definitions, instance: dg.DagsterInstance, output_dir: Path
) -> None:
    refresh(live_defs, instance)

    def latest(name: str, partition: str | None = None) -> dict:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(name),
                asset_partitions=[partition] if partition else None,
            ),
            limit=1,
        ).records
        materialization = records[0].asset_materialization
        assert materialization is not None
        return {k: v.value for k, v in materialization.metadata.items()}

    competitions = latest("raw_competitions")
    assert competitions["dagster/row_count"] == 13
    premier_league = latest("raw_teams", "PL")
    # One competition's teams, said as such: a row count here would read as the asset's size.
    assert premier_league["teams_in_this_competition"] == 20
    assert "dagster/row_count" not in premier_league
    assert latest("raw_teams", "BSA")["teams_in_this_competition"] == 0
    for raw in (competitions, premier_league):
        # The API's own count of what is left of the budget, never the key.
        assert raw["api_requests_available_minute"] >= 0
        assert "api_counter_reset_seconds" in raw
        assert TEST_KEY not in json.dumps(raw, default=str)
    expected_rows = {"dim_competitions": 13, "dim_teams": 226, "fact_competitions": 264}
    for table in TABLES:
        meta = latest(table)
        assert meta["dagster/row_count"] == expected_rows[table]
        assert meta["dagster/column_schema"].columns
    summary = latest("summary_csv")
    assert summary["dagster/row_count"] == 13
    assert [c.name for c in summary["dagster/column_schema"].columns] == [
        "competition_id",
        "competition_code",
        "competition_name",
        "number_of_teams",
    ]


def test_refresh_with_the_json_format_prints_json_lines_only(
    tmp_path: Path, pg_url: str, schema: str
) -> None:
    """FOOTBALL_LOG_FORMAT=json works for `football-assets refresh` as documented: stdout is one
    JSON object per line, the runs' records with their run and step, then the CLI's summary."""
    env = user_env(DATABASE_URL=pg_url, FOOTBALL_DB_SCHEMA=schema, FOOTBALL_LOG_FORMAT="json")

    def refresh_lines(*args: str, **extra: str) -> list[dict]:
        result = cli("refresh", *args, cwd=tmp_path, env={**env, **extra})
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return [json.loads(line) for line in result.stdout.splitlines()]  # every line parses

    # The default instance: its dagster.yaml carries the JSON handler.
    lines = refresh_lines()
    final = lines[-1]
    assert len(final["run_ids"]) == 3
    assert final["rows"] == {"dim_competitions": 13, "dim_teams": 226, "fact_competitions": 264}
    assert final["summary"] == str(tmp_path / "output" / "summary.csv")
    from_runs = [line for line in lines if "run_id" in line]
    assert {line["run_id"] for line in from_runs} == set(final["run_ids"])
    assert {line["step_key"] for line in from_runs} == {
        "raw_competitions",
        "raw_teams",
        "warehouse_tables",
        "summary_csv",
    }
    stored = [line for line in from_runs if line["message"].startswith("Stored 13 raw_teams")]
    assert len(stored) == 1  # one handler, no duplicates
    assert all({"timestamp", "level", "logger", "message"} <= set(line) for line in lines)

    # An instance of the user's own, without the project's python_logs: the same lines.
    mine = tmp_path / "mine"
    lines = refresh_lines("--force", DAGSTER_HOME=str(mine))
    from_runs = [line for line in lines if "run_id" in line]
    assert {line["run_id"] for line in from_runs} == set(lines[-1]["run_ids"])
    # One line per table the step loads: the three tables and their two history tables.
    assert len([line for line in from_runs if line["step_key"] == "warehouse_tables"]) == 5
    assert not (mine / "dagster.yaml").exists()  # never written into the user's instance
