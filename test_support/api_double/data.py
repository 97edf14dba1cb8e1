"""What the double serves: the recorded snapshot or hand-made data, edited by tests as it runs."""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from test_support.api_double.wire import MSG_NOT_FOUND, MSG_RESTRICTED, JsonDict, dumps, error

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "football_assets" / "snapshot"
_SUMMARY_KEYS = ("id", "name", "code", "type", "emblem")


def make_competition(competition_id: int, name: str, code: str) -> JsonDict:
    """A /competitions item shaped like the recorded ones (for small hand-made data sets)."""
    return {
        "id": competition_id,
        "area": {"id": 2000 + competition_id % 1000, "name": "Area", "code": "ARE", "flag": None},
        "name": name,
        "code": code,
        "type": "LEAGUE",
        "emblem": f"https://crests.football-data.org/{code}.png",
        "plan": "TIER_ONE",
        "currentSeason": {
            "id": 10_000 + competition_id,
            "startDate": "2024-08-16",
            "endDate": "2025-05-25",
            "currentMatchday": 1,
            "winner": None,
        },
        "numberOfAvailableSeasons": 1,
        "lastUpdated": "2025-01-31T00:00:00Z",
    }


def make_team(team_id: int, name: str, **extra: Any) -> JsonDict:
    """A team dict shaped like the recorded ones; ``extra`` overrides any field."""
    team: JsonDict = {
        "area": {"id": 2072, "name": "England", "code": "ENG", "flag": None},
        "id": team_id,
        "name": name,
        "shortName": name,
        "tla": name[:3].upper(),
        "crest": f"https://crests.football-data.org/{team_id}.png",
        "address": None,
        "website": None,
        "founded": None,
        "clubColors": None,
        "venue": None,
        "runningCompetitions": [],
        "coach": {
            "id": None,
            "firstName": None,
            "lastName": None,
            "name": None,
            "dateOfBirth": None,
            "nationality": None,
            "contract": {"start": None, "until": None},
        },
        "squad": [],
        "staff": [],
        "lastUpdated": "2025-01-31T00:00:00Z",
    }
    team.update(extra)
    return team


@dataclass
class ApiData:
    """What the double serves. Mutate it freely between (or during) client runs.

    - ``competitions``: the items of ``/competitions``, in served order.
    - ``teams``: competition id -> its team dicts. A listed competition without an entry
      serves ``count: 0`` (like Série A between seasons).
    - ``seasons``: competition id -> ``season`` object of the teams response (the recorded one
      when loaded from files); falls back to the competition's ``currentSeason``.
    - ``restricted``: competition ids answered with 403 (outside the plan), listed or not.

    The teams response's ``competition`` summary is always derived from the listing, so a
    renamed competition stays consistent (for the recording it equals the recorded object).
    Use the helpers or hold ``lock`` for multi-step edits while a client is running.
    """

    competitions: list[JsonDict] = field(default_factory=list)
    teams: dict[int, list[JsonDict]] = field(default_factory=dict)
    seasons: dict[int, JsonDict] = field(default_factory=dict)
    restricted: set[int] = field(default_factory=set)
    client: str = "example"
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def from_sample_dir(cls, path: str | Path | None = None) -> ApiData:
        """Load ``competitions.json`` and every ``teams_<id>.json`` (fresh dicts each call)."""
        root = Path(path) if path is not None else SNAPSHOT_DIR
        listing = json.loads((root / "competitions.json").read_text(encoding="utf-8"))
        data = cls(competitions=listing["competitions"], client=listing["filters"]["client"])
        for teams_file in sorted(root.glob("teams_*.json")):
            recorded = json.loads(teams_file.read_text(encoding="utf-8"))
            competition_id = int(recorded["competition"]["id"])
            data.teams[competition_id] = recorded["teams"]
            data.seasons[competition_id] = recorded["season"]
        return data

    def copy(self) -> ApiData:
        """Deep copy with its own lock (dataclasses.replace/deepcopy choke on the lock)."""
        with self.lock:
            return ApiData(
                competitions=copy.deepcopy(self.competitions),
                teams=copy.deepcopy(self.teams),
                seasons=copy.deepcopy(self.seasons),
                restricted=set(self.restricted),
                client=self.client,
            )

    # ---- lookups ---------------------------------------------------------------------------

    def competition(self, key: int | str) -> JsonDict | None:
        """A listed competition by id or by code (the live API accepts both in URLs)."""
        with self.lock:
            for item in self.competitions:
                if item["id"] == key or str(item["id"]) == str(key) or item.get("code") == key:
                    return item
        return None

    def team_ids(self, competition_id: int | None = None) -> set[int]:
        with self.lock:
            groups = (
                [self.teams.get(competition_id, [])]
                if competition_id is not None
                else list(self.teams.values())
            )
            return {team["id"] for group in groups for team in group}

    # ---- mutations -------------------------------------------------------------------------

    def add_competition(
        self,
        competition: JsonDict,
        teams: list[JsonDict] | None = None,
        season: JsonDict | None = None,
    ) -> None:
        with self.lock:
            self.remove_competition(competition["id"])
            self.competitions.append(competition)
            self.teams[competition["id"]] = list(teams or [])
            if season is not None:
                self.seasons[competition["id"]] = season

    def remove_competition(self, competition_id: int) -> None:
        """Unlist it; its teams endpoint then answers 404."""
        with self.lock:
            self.competitions[:] = [c for c in self.competitions if c["id"] != competition_id]
            self.teams.pop(competition_id, None)
            self.seasons.pop(competition_id, None)

    def add_team(self, competition_id: int, team: JsonDict) -> None:
        with self.lock:
            self.teams.setdefault(competition_id, []).append(team)

    def remove_team(self, competition_id: int, team_id: int) -> None:
        with self.lock:
            group = self.teams.get(competition_id, [])
            group[:] = [team for team in group if team["id"] != team_id]

    def update_team(self, team_id: int, competition_id: int | None = None, **fields: Any) -> int:
        """Set fields on every copy of the team (one per competition, as in the recording).

        Returns how many team dicts changed, so a typo'd id fails loudly in the test.
        """
        with self.lock:
            changed = 0
            for cid, group in self.teams.items():
                if competition_id is not None and cid != competition_id:
                    continue
                for team in group:
                    if team["id"] == team_id:
                        team.update(fields)
                        changed += 1
            return changed

    def rename_team(self, team_id: int, name: str, competition_id: int | None = None) -> int:
        return self.update_team(team_id, competition_id, name=name)

    # ---- rendering -------------------------------------------------------------------------

    def render_competitions(self) -> bytes:
        with self.lock:
            return dumps(
                {
                    "count": len(self.competitions),
                    "filters": {"client": self.client},
                    "competitions": self.competitions,
                }
            )

    def render_teams(self, key: str) -> tuple[int, bytes]:
        """(status, body) for /competitions/{key}/teams."""
        with self.lock:
            item = self.competition(key)
            competition_id = item["id"] if item is not None else _int_or_none(key)
            if competition_id is not None and competition_id in self.restricted:
                return 403, dumps(error(MSG_RESTRICTED, 403))
            if item is None or competition_id is None:
                return 404, dumps(error(MSG_NOT_FOUND, 404))
            teams = self.teams.get(competition_id, [])
            season = self.seasons.get(competition_id) or item.get("currentSeason") or {}
            start = season.get("startDate")
            return 200, dumps(
                {
                    "count": len(teams),
                    "filters": {"season": start[:4]} if start else {},
                    "competition": {key_: item.get(key_) for key_ in _SUMMARY_KEYS},
                    "season": season,
                    "teams": teams,
                }
            )


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
