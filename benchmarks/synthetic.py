"""Synthetic football-data.org answers at any scale, and the tables they must produce;
deterministic (seeded), so two runs of one scale serve byte-identical answers and the rerun
shows that unchanged raw data rebuilds nothing."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any

from test_support.api_double import ApiData, make_competition, make_team

FIRST_COMPETITION_ID = 10_000
FIRST_TEAM_ID = 100_000
PAIRS_PER_TEAM = 1.8  # ≈ 20,000 pairs / 11,000 teams

# Scripts the pipeline must carry verbatim: Latin with diacritics, Greek, Cyrillic, Turkish,
# CJK, Arabic, plus a quote and a tab-free comma for the CSV.
PREFIXES = ["FC", "Δυναμό", "Спартак", "Atlético", "Beşiktaş", "北京国安", "الأهلي", "Škoda"]
PLACES = ["München", "São Paulo", "Łódź", "Malmö", "İstanbul", "Zürich", "Kraków", 'Río "Bajo"']


def team_pool_size(competitions: int, teams_each: int) -> int:
    return max(teams_each, round(competitions * teams_each / PAIRS_PER_TEAM))


def synthetic_team(index: int, squad: int = 0) -> dict[str, Any]:
    prefix = PREFIXES[index % len(PREFIXES)]
    place = PLACES[(index // len(PREFIXES)) % len(PLACES)]
    name = f"{prefix} {place} {index}"
    return make_team(
        FIRST_TEAM_ID + index,
        name,
        shortName=f"{place} {index}",
        area={"id": 2000 + index % 250, "name": place, "code": f"A{index % 250:02d}", "flag": None},
        address=f"Straße {index}, {place}",
        website=f"https://club{index}.example",
        founded=1850 + index % 170,
        clubColors="Rot / Weiß",
        venue=f"Estádio {index}",
        # A squad makes a payload as heavy as a real one (about 5 KB per team).
        squad=[
            {
                "id": 10_000_000 + index * 100 + player,
                "name": f"Jogador {player} «{place}»",
                "position": "Midfield",
                "dateOfBirth": "2000-01-01",
                "nationality": place,
            }
            for player in range(squad)
        ],
    )


def synthetic_data(competitions: int, teams_each: int, *, squad: int = 0, seed: int = 6) -> ApiData:
    """`competitions` × `teams_each` competition/team pairs over a shared pool of teams.

    Most teams play in several competitions (the free tier has 264 pairs for 226 teams; the
    issue's 20,000 pairs for 11,000 teams), and names are deliberately non-ASCII."""
    rng = random.Random(f"{seed}:{competitions}x{teams_each}")
    pool_size = team_pool_size(competitions, teams_each)
    pool: dict[int, dict[str, Any]] = {}
    data = ApiData(client="benchmark")
    for c in range(competitions):
        competition_id = FIRST_COMPETITION_ID + c
        name = f"{PREFIXES[c % len(PREFIXES)]} Liga {PLACES[c % len(PLACES)]} {c}"
        picks = rng.sample(range(pool_size), min(teams_each, pool_size))
        # One dict per team, shared by its competitions: a team is the same everywhere.
        teams = [pool.setdefault(i, synthetic_team(i, squad)) for i in picks]
        data.add_competition(make_competition(competition_id, name, f"C{c:04d}"), teams=teams)
    return data


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def expected_tables(data: ApiData) -> dict[str, Any]:
    """What the warehouse must hold, row for row, derived from the served data alone."""
    competitions: dict[int, tuple[Any, ...]] = {}
    for c in data.competitions:
        area, season = c.get("area") or {}, c.get("currentSeason") or {}
        competitions[c["id"]] = (
            c["name"],
            c.get("code"),
            c.get("type"),
            c.get("plan"),
            area.get("id"),
            area.get("name"),
            area.get("code"),
            c.get("emblem"),
            date.fromisoformat(season["startDate"]) if season.get("startDate") else None,
            date.fromisoformat(season["endDate"]) if season.get("endDate") else None,
            _instant(c.get("lastUpdated")),
        )
    teams: dict[int, tuple[Any, ...]] = {}
    pairs: set[tuple[int, int]] = set()
    for competition_id in sorted(data.teams):  # later competitions win, like the pipeline
        for t in data.teams[competition_id]:
            area = t.get("area") or {}
            teams[t["id"]] = (
                t["name"],
                t.get("shortName"),
                t.get("tla"),
                t.get("crest"),
                t.get("address"),
                t.get("website"),
                t.get("founded"),
                t.get("clubColors"),
                t.get("venue"),
                area.get("id"),
                area.get("name"),
                area.get("code"),
                _instant(t.get("lastUpdated")),
            )
            pairs.add((competition_id, t["id"]))
    counts = dict.fromkeys(competitions, 0)
    for cid, _ in pairs:
        counts[cid] += 1
    summary = sorted(
        ([str(cid), row[1] or "", row[0], str(counts[cid])] for cid, row in competitions.items()),
        key=lambda row: (-int(row[3]), int(row[0])),
    )
    return {"competitions": competitions, "teams": teams, "pairs": pairs, "summary": summary}
