"""raw_competitions' Markdown table of key, id, code, name and teams, each row linking to its
raw_teams partition: the names beside the competitions partitions' keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from football_assets.competition_keys import competition_keys
from football_assets.payloads import parse_competitions
from football_assets.resources.warehouse import Warehouse

HEADER = "| key | id | code | name | teams (last fetched) |"


def stored_team_counts(warehouse: Warehouse, keys: Mapping[str, int]) -> dict[str, int]:
    """{partition key: teams in its competition's latest stored raw_teams answer}; missing
    when none (`keys`: {partition key: competition id})."""
    rows = warehouse.query_latest(
        "raw_teams",
        dict(keys),
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
    lines = [HEADER, "| --- | --- | --- | --- | --- |"]
    key_of = {cid: key for key, cid in competition_keys(payload).items()}
    for competition in sorted(parse_competitions(payload).competitions, key=lambda c: c.id):
        key = key_of[competition.id]
        count = teams.get(key)
        shown = f"raw_teams {key}" if count is None else str(count)
        link = f"/assets/raw_teams?view=partitions&partition={quote(key, safe='')}"
        lines.append(
            f"| {_cell(key)} | {competition.id} | {_cell(competition.code or '')} "
            f"| {_cell(competition.name)} | [{shown}]({link}) |"
        )
    return "\n".join(lines)
