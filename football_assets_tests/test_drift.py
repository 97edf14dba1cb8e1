"""What the drift checks know: the snapshot's paths, the paths the tables read, and the rule
that says a read path is gone, in Python (raw steps) and in SQL (the warehouse's guard) alike.

End to end (the API double, the runs, the tables): test_drift_pipeline.py.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from football_assets import drift
from football_assets.assets.warehouse import TEAM_FIELDS, competition_rows
from football_assets.payloads import PayloadError
from football_assets.resources.api import SNAPSHOT_DIR
from football_assets.resources.api_answers import ApiResponse
from football_assets.resources.raw_records import ResponseSpool
from football_assets.resources.warehouse import Warehouse


def snapshot(name: str) -> Any:
    return json.loads((SNAPSHOT_DIR / name).read_text(encoding="utf-8"))


def test_the_known_paths_file_is_what_the_snapshot_and_the_models_hold() -> None:
    # Regenerate with: python -c "from football_assets import drift; ..." (see the Decisions).
    stored = json.loads(drift.KNOWN_PATHS_FILE.read_text(encoding="utf-8"))
    assert stored == drift.build_known_paths(SNAPSHOT_DIR)
    assert "teams[].squad[].position" in stored["teams"]  # unread, yet known: no WARN for it
    assert "competitions[].currentSeason.currentMatchday" in stored["competitions"]


def test_every_read_path_is_known_and_is_what_the_models_declare() -> None:
    for endpoint, model in drift.MODELS.items():
        read = set(drift.READ_PATHS[endpoint])
        assert read <= drift.known_paths(endpoint), read - drift.known_paths(endpoint)
        # The models declare exactly the fields the tables read (plus their containers).
        leaves = {
            p for p in drift.model_paths(model) if not any(q.startswith(p) for q in read - {p})
        }
        assert leaves == read


def test_team_read_paths_feed_the_columns_team_fields_names() -> None:
    expected = {"teams[]." + ".".join(path): column for column, path in TEAM_FIELDS.items()}
    read = drift.READ_PATHS[drift.TEAMS]
    assert set(read) == set(expected)
    for path, column in expected.items():
        assert read[path].split(", ")[0] == f"dim_teams.{column}"


@pytest.mark.parametrize("path", sorted(drift.READ_PATHS[drift.COMPETITIONS]))
def test_competition_read_paths_feed_the_columns_competition_rows_fills(path: str) -> None:
    payload = snapshot("competitions.json")
    before = competition_rows(payload)
    *parents, key = path.removeprefix("competitions[].").split(".")
    for item in payload["competitions"]:
        for parent in parents:
            item = item.get(parent) or {}
        item.pop(key, None)
    table, column = drift.READ_PATHS[drift.COMPETITIONS][path].split(".")
    assert table == "dim_competitions"
    try:
        after = competition_rows(payload)
    except PayloadError:
        return  # a required field (id, name): the column cannot do without it
    assert any(row[column] is not None for row in before)
    assert all(row[column] is None for row in after)


def teams_answer(*teams: dict[str, Any]) -> dict[str, Any]:
    return {"count": len(teams), "teams": list(teams)}


COMPLETE = {
    "id": 1,
    "name": "A",
    **dict.fromkeys(("shortName", "tla", "crest", "address", "website", "founded", "clubColors")),
    "venue": "V",
    "area": {"id": 2, "name": "N", "code": "C"},
    "lastUpdated": None,
}


def without(team: dict[str, Any], *path: str) -> dict[str, Any]:
    team = copy.deepcopy(team)
    holder = team
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return team


# (answer, the read paths it lacks): the rule, case by case.
CASES = {
    "complete": (teams_answer(COMPLETE, COMPLETE), []),
    "venue-gone-from-every-team": (
        teams_answer(without(COMPLETE, "venue"), without(COMPLETE, "venue")),
        ["teams[].venue"],
    ),
    "venue-gone-from-one-team": (teams_answer(without(COMPLETE, "venue"), COMPLETE), []),
    "first-team-lacks-it-the-second-has-it": (
        teams_answer(without(COMPLETE, "area", "id"), COMPLETE),
        [],
    ),
    "area-gone": (
        teams_answer(without(COMPLETE, "area")),
        ["teams[].area.code", "teams[].area.id", "teams[].area.name"],
    ),
    "area-null-everywhere": (teams_answer({**COMPLETE, "area": None}), []),
    "area-empty-object": (
        teams_answer({**COMPLETE, "area": {}}),
        ["teams[].area.code", "teams[].area.id", "teams[].area.name"],
    ),
    "no-teams": (teams_answer(), []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_read_path_is_missing_only_where_its_object_is_there_without_it(case: str) -> None:
    answer, missing = CASES[case]
    found = drift.missing_read_paths(drift.shape(answer), drift.TEAMS)
    assert sorted(m.path for m in found) == missing


def test_the_warehouse_guard_sql_judges_every_case_as_the_raw_steps_do(
    warehouse: Warehouse,
) -> None:
    spool = ResponseSpool()
    keys = [str(1000 + index) for index in range(len(CASES))]
    for key, (answer, _) in zip(keys, CASES.values(), strict=True):
        text = json.dumps(answer)
        spool.add(
            key,
            ApiResponse(
                endpoint=f"/competitions/{key}/teams",
                url="loopback",
                status=200,
                payload=answer,
                size_bytes=len(text),
                fetched_at=datetime.now(UTC),
                source="live",
            ),
        )
    warehouse.append_raw("raw_teams", "run", spool)
    spool.close()

    rows = warehouse.query_latest("raw_teams", keys, drift.teams_facts_sql())

    by_key = {row["partition_key"]: row for row in rows}
    for key, (case, (_, missing)) in zip(keys, CASES.items(), strict=True):
        found = drift.missing_in_facts(by_key[key]) if key in by_key else []
        assert sorted(m.path for m in found) == missing, case


def test_a_path_is_new_unless_the_project_or_the_previous_answer_knew_it() -> None:
    answer = snapshot("teams_2021.json")
    assert drift.new_paths(drift.shape(answer), drift.TEAMS) == []
    for team in answer["teams"]:
        team["socialMedia"] = {"x": "@club"}
    found = drift.shape(answer)
    assert drift.new_paths(found, drift.TEAMS) == ["teams[].socialMedia", "teams[].socialMedia.x"]
    assert drift.new_paths(found, drift.TEAMS, seen=found) == []
