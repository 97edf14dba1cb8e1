"""Reporting: `summary_csv`, teams per competition, written from the committed tables in one query
and replaced atomically; text cells a spreadsheet would execute get a leading apostrophe."""

import csv
import hashlib
import io
from typing import Any

import dagster as dg

from football_assets.assets.warehouse import DIM_COMPETITIONS, FACT_COMPETITIONS
from football_assets.policies import (
    DAILY_FRESHNESS,
    DATABASE_RETRY,
    DOWNSTREAM_CONDITION,
    OWNERS,
    REPORTING,
)
from football_assets.resources.output import OutputError, OutputLocation
from football_assets.resources.warehouse import Warehouse

SUMMARY_COLUMNS = ["competition_id", "competition_code", "competition_name", "number_of_teams"]
SUMMARY_FILE = "summary.csv"
CODE_VERSION = "2"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# LEFT JOIN: a competition with no teams (between seasons) is a row with 0, not a missing row.
SUMMARY_SQL = """
SELECT c.id AS competition_id, c.code AS competition_code, c.name AS competition_name,
       count(f.team_id)::int AS number_of_teams
FROM {schema}.dim_competitions c
LEFT JOIN {schema}.fact_competitions f ON f.competition_id = c.id
GROUP BY c.id, c.code, c.name
ORDER BY number_of_teams DESC, c.id ASC
"""


def summary_rows(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query(SUMMARY_SQL)


def zero_team_competitions(rows: list[dict[str, Any]]) -> list[str]:
    """`name (id)` of each competition in `summary_rows` that has no team."""
    return [
        f"{r['competition_name']} ({r['competition_id']})" for r in rows if not r["number_of_teams"]
    ]


def spreadsheet_safe(value: Any) -> tuple[Any, bool]:
    """The cell as written, and whether it was neutralized (see the module docstring)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value, True
    return value, False


def render_csv(rows: list[dict[str, Any]]) -> tuple[str, int]:
    """RFC 4180 CSV (CRLF), and how many cells were neutralized."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    neutralized = 0
    for row in rows:
        safe = {}
        for column in SUMMARY_COLUMNS:
            safe[column], changed = spreadsheet_safe(row[column])
            neutralized += changed
        writer.writerow(safe)
    return buffer.getvalue(), neutralized


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in SUMMARY_COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


SUMMARY_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("competition_id", "integer", "football-data.org id"),
        dg.TableColumn("competition_code", "text", "e.g. PL; empty if none"),
        dg.TableColumn("competition_name", "text"),
        dg.TableColumn("number_of_teams", "integer", "0 between seasons"),
    ]
)


@dg.asset(
    group_name=REPORTING,
    owners=OWNERS,
    kinds={"csv"},
    retry_policy=DATABASE_RETRY,
    deps=[DIM_COMPETITIONS, FACT_COMPETITIONS],
    automation_condition=DOWNSTREAM_CONDITION,
    freshness_policy=DAILY_FRESHNESS,
    code_version=CODE_VERSION,
    description="summary.csv: teams per competition, zero-team competitions included.",
)
def summary_csv(
    context: dg.AssetExecutionContext, warehouse: Warehouse, summary_output: OutputLocation
) -> dg.MaterializeResult:
    rows = summary_rows(warehouse)
    text, neutralized = render_csv(rows)
    data = text.encode("utf-8")
    try:
        where = summary_output.write_atomically(SUMMARY_FILE, data)
    except OutputError as exc:
        # Permissions, a file where a folder should be, a missing bucket: a retry cannot help.
        raise dg.Failure(str(exc), allow_retries=False) from None
    context.log.info("Wrote %d competitions to %s.", len(rows), where)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(where),
            "dagster/row_count": len(rows),
            "dagster/column_schema": SUMMARY_SCHEMA,
            "zero_team_competitions": ", ".join(zero_team_competitions(rows)) or "none",
            "cells_neutralized_for_spreadsheets": neutralized,
            "summary": dg.MetadataValue.md(markdown_table(rows)),
        },
        data_version=dg.DataVersion(hashlib.sha256(data).hexdigest()),
    )
