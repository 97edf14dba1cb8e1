"""Schema drift: an answer's JSON paths (`teams[].area.id`, arrays flattened, with the JSON kinds
seen there) against the paths the project knows and the paths the tables read."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from football_assets.payloads import CompetitionsPayload, TeamsPayload

KNOWN_PATHS_FILE = Path(__file__).resolve().parent / "snapshot" / "known_paths.json"
COMPETITIONS = "competitions"  # GET /competitions
TEAMS = "teams"  # GET /competitions/{id}/teams
MODELS: Mapping[str, type[BaseModel]] = {COMPETITIONS: CompetitionsPayload, TEAMS: TeamsPayload}

# Which column each path the tables read feeds. Kept beside the paths, not derived from the
# extraction code (assets/ import this module); test_drift pins it to TEAM_FIELDS, to
# competition_rows and to the payload models, which declare exactly the fields the tables read.
_TEAM_COLUMNS = {
    "id": "id",
    "name": "name",
    "shortName": "short_name",
    "tla": "tla",
    "crest": "crest",
    "address": "address",
    "website": "website",
    "founded": "founded",
    "clubColors": "club_colors",
    "venue": "venue",
    "area.id": "area_id",
    "area.name": "area_name",
    "area.code": "area_code",
    "lastUpdated": "last_updated",
}
_COMPETITION_COLUMNS = {
    "id": "id",
    "name": "name",
    "code": "code",
    "type": "type",
    "plan": "plan",
    "emblem": "emblem",
    "area.id": "area_id",
    "area.name": "area_name",
    "area.code": "area_code",
    "currentSeason.startDate": "current_season_start",
    "currentSeason.endDate": "current_season_end",
    "lastUpdated": "last_updated",
}
READ_PATHS: Mapping[str, Mapping[str, str]] = {
    COMPETITIONS: {
        f"competitions[].{p}": f"dim_competitions.{c}" for p, c in _COMPETITION_COLUMNS.items()
    },
    TEAMS: {
        **{f"teams[].{p}": f"dim_teams.{c}" for p, c in _TEAM_COLUMNS.items()},
        # The membership rows read the team id too.
        "teams[].id": "dim_teams.id, fact_competitions.team_id",
    },
}

Shape = dict[str, set[str]]  # path -> the JSON kinds seen there


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "number"


def shape(payload: Any) -> Shape:
    """Every path of `payload` with its kinds. Walks the values of one path together, so each
    node is visited once and the per-node work is a set or list comprehension."""
    found: Shape = {}
    pending: list[tuple[str, list[Any]]] = [("", [payload])]
    while pending:
        path, values = pending.pop()
        kinds = {_kind(v) for v in values}
        found.setdefault(path, set()).update(kinds)
        if "object" in kinds:
            objects = [v for v in values if isinstance(v, dict)]
            keys = {k for o in objects for k in o}
            prefix = f"{path}." if path else ""
            for key in keys:
                pending.append((prefix + key, [o[key] for o in objects if key in o]))
        if "array" in kinds:
            items = [item for v in values if isinstance(v, list) for item in v]
            if items:
                pending.append((f"{path}[]", items))
    found.pop("", None)
    return found


def model_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The paths a payload model declares (its list fields flattened as `[]`)."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        if getattr(annotation, "__origin__", None) is list:
            path += "[]"
            paths.add(path)
        for candidate in (annotation, *args):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                paths |= model_paths(candidate, f"{path}.")
    return paths


def build_known_paths(snapshot_dir: Path) -> dict[str, list[str]]:
    """What `known_paths.json` holds: the recorded answers' paths and the models' paths."""
    known: dict[str, set[str]] = {name: model_paths(model) for name, model in MODELS.items()}
    answers = {COMPETITIONS: ["competitions.json"], TEAMS: ["teams_*.json"]}
    for endpoint, patterns in answers.items():
        for pattern in patterns:
            for path in sorted(snapshot_dir.glob(pattern)):
                known[endpoint] |= set(shape(json.loads(path.read_text(encoding="utf-8"))))
    return {endpoint: sorted(paths) for endpoint, paths in known.items()}


@cache
def known_paths(endpoint: str) -> frozenset[str]:
    return frozenset(json.loads(KNOWN_PATHS_FILE.read_text(encoding="utf-8"))[endpoint])


def new_paths(found: Shape, endpoint: str, seen: Iterable[str] = ()) -> list[str]:
    """Paths of an answer neither the project nor `seen` (the previous answer) knows."""
    known = known_paths(endpoint) | set(seen)
    return sorted(p for p in found if p not in known)


def _parent(path: str) -> str:
    if path.endswith("[]"):
        return path[:-2]
    return path.rsplit(".", 1)[0] if "." in path else ""


@dataclass(frozen=True)
class MissingPath:
    path: str
    column: str

    def __str__(self) -> str:
        return f"{self.path} (feeds {self.column})"


def missing_read_paths(found: Shape, endpoint: str) -> list[MissingPath]:
    """Read paths an answer lacks where it has the object that should hold them.

    Every read path is a known path (the snapshot has them all, and the models declare them),
    so "present before" always holds: a read path is missing when the nearest ancestor the
    answer does have is an object somewhere. An empty array (a competition with no teams) or a
    null (a team without an area) holds no fields, so nothing under it is missing.
    """
    missing = []
    for path, column in READ_PATHS[endpoint].items():
        if path in found:
            continue
        ancestor = _parent(path)
        while ancestor and ancestor not in found:
            ancestor = _parent(ancestor)
        if not ancestor or "object" in found[ancestor]:
            missing.append(MissingPath(path, column))
    return missing


def describe_missing(missing: Mapping[str, list[MissingPath]]) -> str:
    """One line: which fields the tables read each competition's answer lacks, and what now."""
    found = "; ".join(f"{where}: {', '.join(map(str, paths))}" for where, paths in missing.items())
    return (
        f"the API stopped sending fields the tables read ({found}); the tables keep their "
        "previous rows until the fields are back or the code stops reading them (the answers "
        "are kept verbatim in raw_responses)"
    )


def _ancestry(path: str) -> list[str]:
    paths = [path]
    while (path := _parent(path)) and path.startswith("teams[]"):
        paths.append(path)
    return paths


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _teams_facts() -> list[tuple[str, str, str | None]]:
    """(path, present, holds an object) as SQL over one team `t`, for the read paths under
    `teams[]` and their ancestors (only an ancestor's kind matters: is it an object)."""
    read = set(READ_PATHS[TEAMS])
    paths = {a for p in read for a in _ancestry(p)} - {"teams[]"}
    facts: list[tuple[str, str, str | None]] = [("teams[]", "true", "jsonb_typeof(t) = 'object'")]
    for path in sorted(paths):
        keys = path.removeprefix("teams[].").split(".")
        parent = "t" if len(keys) == 1 else f"(t #> {_literal('{' + ','.join(keys[:-1]) + '}')})"
        key = _literal(keys[-1])
        is_object = None if path in read else f"jsonb_typeof({parent} -> {key}) = 'object'"
        facts.append((path, f"jsonb_typeof({parent}) = 'object' AND {parent} ? {key}", is_object))
    return facts


TEAMS_FACTS = _teams_facts()


def _first_team_has_all() -> str:
    """SQL: the answer's first team holds every read field (and its area every read area
    field): nothing can be missing, so the answer needs no look at its other teams."""
    by_parent: dict[tuple[str, ...], list[str]] = {}
    for path in READ_PATHS[TEAMS]:
        *steps, key = path.removeprefix("teams[].").split(".")
        by_parent.setdefault(tuple(steps), []).append(key)
    tests = []
    for parent, keys in sorted(by_parent.items()):
        value = f"(payload #> {_literal('{' + ','.join(['teams', '0', *parent]) + '}')})"
        wanted = ", ".join(_literal(k) for k in sorted(keys))
        tests.append(f"jsonb_typeof({value}) = 'object' AND {value} ?& ARRAY[{wanted}]")
    return " AND ".join(tests)


def teams_facts_sql() -> str:
    """Per partition of `latest(partition_key, payload)` (teams answers), whether each read path
    and its ancestors are present and hold an object: what `missing_in_facts` judges. Answers
    whose first team has every read field are skipped (the common case, one probe each); a
    competition without teams yields no row (nothing under an empty array is missing)."""
    columns = [
        f"bool_or({present}) AS p{i}" + (f", bool_or({obj}) AS o{i}" if obj else "")
        for i, (_, present, obj) in enumerate(TEAMS_FACTS)
    ]
    # Every identifier and literal comes from READ_PATHS (this file), quoted by _literal.
    return (
        "SELECT partition_key, "  # noqa: S608
        + ", ".join(columns)
        + " FROM latest CROSS JOIN LATERAL "
        "jsonb_array_elements(CASE jsonb_typeof(payload -> 'teams') WHEN 'array' "
        "THEN payload -> 'teams' ELSE '[]'::jsonb END) AS a(t) "
        f"WHERE NOT coalesce({_first_team_has_all()}, false) GROUP BY partition_key"
    )


def missing_in_facts(row: Mapping[str, Any]) -> list[MissingPath]:
    """`missing_read_paths` of one row of `teams_facts_sql`."""
    found: Shape = {TEAMS: {"array"}}
    for i, (path, _, _) in enumerate(TEAMS_FACTS):
        if row[f"p{i}"]:
            found[path] = {"object"} if row.get(f"o{i}") else {"other"}
    return missing_read_paths(found, TEAMS)
