"""A table's change set as materialization metadata: counts and the first changes, in Markdown."""

from __future__ import annotations

from typing import Any

import dagster as dg

from football_assets.resources.table_changes import ChangeSet

_CELL_CHARS = 80  # a crest URL or an address stays readable in the UI's table


def _cell(value: str | None) -> str:
    if value is None:
        return "∅"
    text = value if len(value) <= _CELL_CHARS else value[: _CELL_CHARS - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def changes_markdown(changes: ChangeSet) -> str:
    """The first changes as a Markdown table (key, column, old → new), with what was left out."""
    lines = ["| key | column | old | new |", "|---|---|---|---|"]
    lines += [
        f"| {_cell(c.key)} | {_cell(c.column)} | {_cell(c.old)} | {_cell(c.new)} |"
        for c in changes.sample
    ]
    total = changes.inserted + changes.updated + changes.deleted
    if total > len({c.key for c in changes.sample}):
        lines.append(f"\nFirst {len(changes.sample)} changes shown; {total} rows changed.")
    return "\n".join(lines)


def change_metadata(changes: ChangeSet) -> dict[str, Any]:
    return {
        "rows_inserted": changes.inserted,
        "rows_updated": changes.updated,
        "rows_deleted": changes.deleted,
        "changes": dg.MetadataValue.md(changes_markdown(changes)),
    }
