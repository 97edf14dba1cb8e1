"""Raw API payloads -> warehouse rows: plain functions, no I/O, tested without services.

Pydantic models state exactly which fields the pipeline relies on. A payload missing one of
them is rejected with the field's path, before anything is stored or written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class PayloadError(ValueError):
    """A 200 answer the pipeline cannot use; str() names the endpoint or partition and field."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Area(_Lenient):
    id: int | None = None
    name: str | None = None
    code: str | None = None


class Season(_Lenient):
    startDate: date | None = None  # noqa: N815 - the API's spelling
    endDate: date | None = None  # noqa: N815


class Competition(_Lenient):
    id: int
    name: str
    code: str | None = None
    type: str | None = None
    plan: str | None = None
    emblem: str | None = None
    area: Area | None = None
    currentSeason: Season | None = None  # noqa: N815
    lastUpdated: datetime | None = None  # noqa: N815


class CompetitionsPayload(_Lenient):
    competitions: list[Competition]


class Team(_Lenient):
    id: int
    name: str
    shortName: str | None = None  # noqa: N815
    tla: str | None = None
    crest: str | None = None
    address: str | None = None
    website: str | None = None
    founded: int | None = None
    clubColors: str | None = None  # noqa: N815
    venue: str | None = None
    area: Area | None = None
    lastUpdated: datetime | None = None  # noqa: N815


class TeamsPayload(_Lenient):
    teams: list[Team]


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "body"
    return f"field '{where}': {problem['msg'].lower()}"


def parse_competitions(payload: Any, *, where: str = "GET /competitions") -> CompetitionsPayload:
    try:
        return CompetitionsPayload.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(f"{where}: unusable answer, {_first_problem(exc)}") from None


def parse_teams(payload: Any, *, where: str) -> TeamsPayload:
    try:
        return TeamsPayload.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(f"{where}: unusable answer, {_first_problem(exc)}") from None


def competition_ids(payload: Mapping[str, Any]) -> list[str]:
    """Partition keys, as strings, in id order."""
    ids = sorted({c.id for c in parse_competitions(payload).competitions})
    return [str(i) for i in ids]


def competitions_to_rows(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c in parse_competitions(payload).competitions:
        area = c.area or Area()
        season = c.currentSeason or Season()
        rows.append(
            {
                "id": c.id,
                "name": c.name,
                "code": c.code,
                "type": c.type,
                "plan": c.plan,
                "area_id": area.id,
                "area_name": area.name,
                "area_code": area.code,
                "emblem": c.emblem,
                "current_season_start": season.startDate,
                "current_season_end": season.endDate,
                "last_updated": c.lastUpdated,
            }
        )
    return rows


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


# ---- the same rows, extracted by PostgreSQL --------------------------------------------------
#
# teams_to_rows and memberships_to_rows are the reference, the plain functions tests read.
# dim_teams and fact_competitions, built from every raw_teams partition, run these statements
# instead, inside the database: no payload becomes Python objects. At 4,000 competitions that
# is the difference between a few hundred milliseconds and tens of seconds, and between flat
# memory and GBs (see README, "Performance"). test_transforms_sql.py holds both to the same rows.
#
# The trade-off: these trust their input. They run on stored payloads only, and raw_teams
# stores a payload only after parse_teams accepted it; a field pydantic would coerce but SQL
# cannot cast (say "founded": "c. 1900") fails the load with PostgreSQL's message instead.
#
# Each reads `latest(partition_key, payload)` (see warehouse.RowsFromRaw) and returns the
# table's columns plus `_ord`, the reference's order: by competition id, then as listed.

_APPEARANCES = """
FROM latest
CROSS JOIN LATERAL jsonb_array_elements(latest.payload -> 'teams') WITH ORDINALITY AS a(team, n)
"""
# Computed, not a window: ordering the rows first would sort every team's JSON (a payload never
# lists a billion teams, so the products keep their order).
_ORDER = "latest.partition_key::bigint * 1000000000 + a.n AS _ord"

TEAM_ROWS_SQL = f"""
SELECT (a.team ->> 'id')::int AS id,
       a.team ->> 'name' AS name,
       a.team ->> 'shortName' AS short_name,
       a.team ->> 'tla' AS tla,
       a.team ->> 'crest' AS crest,
       a.team ->> 'address' AS address,
       a.team ->> 'website' AS website,
       (a.team ->> 'founded')::int AS founded,
       a.team ->> 'clubColors' AS club_colors,
       a.team ->> 'venue' AS venue,
       (a.team -> 'area' ->> 'id')::int AS area_id,
       a.team -> 'area' ->> 'name' AS area_name,
       a.team -> 'area' ->> 'code' AS area_code,
       (a.team ->> 'lastUpdated')::timestamptz AS last_updated,
       {_ORDER}
{_APPEARANCES}"""

MEMBERSHIP_ROWS_SQL = f"""
SELECT latest.partition_key::int AS competition_id,
       (a.team ->> 'id')::int AS team_id,
       {_ORDER}
{_APPEARANCES}"""
