"""The warehouse's rows computed in plain Python: the oracle the extraction SQL is held to.

The pipeline extracts dim_teams and fact_competitions by SQL over the stored JSONB answers
(assets/warehouse.py); these functions say the same thing over parsed payloads, independently,
so test_transforms_sql.py can compare the two on every case that matters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from football_assets.payloads import Area, Team, parse_teams


def listed_teams(
    teams_by_competition: Mapping[str, Mapping[str, Any]], listed: Iterable[int]
) -> Iterator[tuple[int, Team]]:
    """(competition id, team) for the competitions the API lists now, in partition order."""
    wanted = {str(i) for i in listed}
    for key in sorted(teams_by_competition, key=int):
        if key in wanted:
            payload = teams_by_competition[key]
            for team in parse_teams(payload, where=f"raw_teams partition {key}").teams:
                yield int(key), team


def teams_to_rows(
    teams_by_competition: Mapping[str, Mapping[str, Any]], listed: Iterable[int]
) -> Iterator[dict[str, Any]]:
    """One row per team appearance; the warehouse de-duplicates teams on their id."""
    for _, t in listed_teams(teams_by_competition, listed):
        area = t.area or Area()
        yield {
            "id": t.id,
            "name": t.name,
            "short_name": t.shortName,
            "tla": t.tla,
            "crest": t.crest,
            "address": t.address,
            "website": t.website,
            "founded": t.founded,
            "club_colors": t.clubColors,
            "venue": t.venue,
            "area_id": area.id,
            "area_name": area.name,
            "area_code": area.code,
            "last_updated": t.lastUpdated,
        }


def memberships_to_rows(
    teams_by_competition: Mapping[str, Mapping[str, Any]], listed: Iterable[int]
) -> Iterator[dict[str, Any]]:
    for competition_id, t in listed_teams(teams_by_competition, listed):
        yield {"competition_id": competition_id, "team_id": t.id}
