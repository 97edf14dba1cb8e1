"""Reporting layer: `summary_csv`, teams per competition, for people."""

import contextlib
import csv
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg

from football_assets import settings
from football_assets.assets.warehouse import DATABASE_RETRY
from football_assets.automation import DOWNSTREAM_CONDITION
from football_assets.resources.warehouse import Warehouse

SUMMARY_COLUMNS = ["competition_id", "competition_code", "competition_name", "number_of_teams"]
SUMMARY_FILE = "summary.csv"
STALE_TEMP_SECONDS = 600

# LEFT JOIN: a competition with no teams (between seasons) is a row with 0, not a missing row.
SUMMARY_SQL = """
SELECT c.id AS competition_id, c.code AS competition_code, c.name AS competition_name,
       count(f.team_id)::int AS number_of_teams
FROM {schema}.dim_competitions c
LEFT JOIN {schema}.fact_competitions f ON f.competition_id = c.id
GROUP BY c.id, c.code, c.name
ORDER BY number_of_teams DESC, c.id ASC
"""


class SummaryConfig(dg.Config):
    output_dir: str | None = None  # default: $FOOTBALL_OUTPUT_DIR, else ./output


def summary_rows(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query(SUMMARY_SQL.format(schema=f'"{warehouse.schema}"'))


def render_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a part: write beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A writer killed between write and rename leaves its temp file; sweep those (not a
    # concurrent writer's fresh one) so they don't pile up beside the report.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                stale.unlink()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in SUMMARY_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


@dg.asset(
    group_name="reporting",
    owners=["team:data-engineering"],
    kinds={"csv"},
    retry_policy=DATABASE_RETRY,
    deps=["dim_competitions", "fact_competitions"],
    automation_condition=DOWNSTREAM_CONDITION,
    description="summary.csv: teams per competition, zero-team competitions included.",
)
def summary_csv(
    context: dg.AssetExecutionContext, config: SummaryConfig, warehouse: Warehouse
) -> dg.MaterializeResult:
    rows = summary_rows(warehouse)
    directory = Path(config.output_dir).absolute() if config.output_dir else settings.output_dir()
    path = directory / SUMMARY_FILE
    write_atomically(path, render_csv(rows))
    empty = [r for r in rows if r["number_of_teams"] == 0]
    context.log.info("Wrote %d competitions to %s.", len(rows), path)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "dagster/row_count": len(rows),
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn("competition_id", "integer", "football-data.org id"),
                    dg.TableColumn("competition_code", "text", "e.g. PL; empty if none"),
                    dg.TableColumn("competition_name", "text"),
                    dg.TableColumn("number_of_teams", "integer", "0 between seasons"),
                ]
            ),
            "zero_team_competitions": ", ".join(
                f"{r['competition_name']} ({r['competition_id']})" for r in empty
            )
            or "none",
            "summary": dg.MetadataValue.md(markdown_table(rows)),
        }
    )
