"""Names a person can read beside the competitions partitions, whose keys are the API's ids
(Dagster 1.13 has no display label for dynamic partition keys): raw_competitions' Markdown
table of id, code, name and teams, each row linking to its raw_teams partition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from football_assets.payloads import parse_competitions
from football_assets.resources.warehouse import Warehouse

HEADER = "| id | code | name | teams (last fetched) |"


def stored_team_counts(warehouse: Warehouse, keys: Sequence[str]) -> dict[str, int]:
    """{competition id: teams in its latest stored raw_teams answer}; missing when none."""
    rows = warehouse.query_latest(
        "raw_teams",
        list(keys),
        "SELECT partition_key, jsonb_array_length(payload -> 'teams') AS teams FROM latest",
    )
    return {str(r["partition_key"]): int(r["teams"] or 0) for r in rows}


def _cell(text: str) -> str:
    """One Markdown table cell: no line breaks, no column separators, no stray markup."""
    flat = " ".join(text.split())
    for char in "\\|*_`[]<>":
        flat = flat.replace(char, "\\" + char)
    return flat or "—"


def competitions_markdown(payload: Any, teams: Mapping[str, int]) -> str:
    """One row per competition, in id order. Teams is the count in its latest stored raw_teams
    answer (the list is fetched before the teams, so a first fetch has none yet: the cell then
    names the partition), always a link to that partition."""
    lines = [HEADER, "| --- | --- | --- | --- |"]
    for competition in sorted(parse_competitions(payload).competitions, key=lambda c: c.id):
        key = str(competition.id)
        count = teams.get(key)
        shown = f"raw_teams {key}" if count is None else str(count)
        link = f"/assets/raw_teams?view=partitions&partition={quote(key, safe='')}"
        lines.append(
            f"| {key} | {_cell(competition.code or '')} | {_cell(competition.name)} "
            f"| [{shown}]({link}) |"
        )
    return "\n".join(lines)
