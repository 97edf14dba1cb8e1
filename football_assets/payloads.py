"""The API's answers as the pipeline relies on them: pydantic models of the fields the tables
read, checked on arrival, so an answer the tables could not hold is refused before it is stored."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# PostgreSQL `integer`. football-data.org ids are below 100,000; an id past 2^31 is a fault
# to report, not a reason to widen every key column.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class PayloadError(ValueError):
    """A 200 answer the pipeline cannot use; str() names where (endpoint or partition) and what."""


def _whole_number(value: Any) -> Any:
    # JSON has one number type: 101.0 is the id 101 (PostgreSQL casts it the same way), 101.5
    # and true are not ids. pydantic's lax mode would take true as 1.
    if isinstance(value, bool):
        raise ValueError("a whole number is required, got a boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _iso_text(value: Any) -> Any:
    # The warehouse casts these in SQL (`::timestamptz`), which reads ISO 8601 text only;
    # pydantic alone would also take a Unix timestamp.
    if value is not None and not isinstance(value, str):
        raise ValueError("an ISO 8601 date-time string is required")
    return value


Int32 = Annotated[int, BeforeValidator(_whole_number), Field(ge=INT32_MIN, le=INT32_MAX)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text)]
IsoDate = Annotated[date, BeforeValidator(_iso_text)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Area(_Lenient):
    id: Int32 | None = None
    name: str | None = None
    code: str | None = None


class Season(_Lenient):
    startDate: IsoDate | None = None  # noqa: N815 - the API's spelling
    endDate: IsoDate | None = None  # noqa: N815


class Competition(_Lenient):
    id: Int32
    name: str
    code: str | None = None
    type: str | None = None
    plan: str | None = None
    emblem: str | None = None
    area: Area | None = None
    currentSeason: Season | None = None  # noqa: N815
    lastUpdated: IsoDateTime | None = None  # noqa: N815


class CompetitionsPayload(_Lenient):
    competitions: list[Competition]


class Team(_Lenient):
    id: Int32
    name: str
    shortName: str | None = None  # noqa: N815
    tla: str | None = None
    crest: str | None = None
    address: str | None = None
    website: str | None = None
    founded: Int32 | None = None
    clubColors: str | None = None  # noqa: N815
    venue: str | None = None
    area: Area | None = None
    lastUpdated: IsoDateTime | None = None  # noqa: N815


class TeamsPayload(_Lenient):
    teams: list[Team]


_STRUCTURE = {
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in (
        (bool, "a boolean"),
        (dict, "an object"),
        (list, "a list"),
        (str, "a string"),
    ):
        if isinstance(value, kind):
            return name
    return "a number"


def _first_problem(error: ValidationError, payload: Any) -> str:
    problem = error.errors()[0]
    loc = problem["loc"]
    where = ".".join(str(part) for part in loc) or "body"
    said = problem["msg"].lower()
    if problem["type"] in _STRUCTURE:
        # The answer's structure changed (an object where a list was): say what it is now.
        said = f"{_STRUCTURE[problem['type']]} was expected, got {_json_kind(problem['input'])}"
    elif problem["type"] in ("less_than_equal", "greater_than_equal"):
        said = (
            f"{problem['input']!r} does not fit the warehouse's integer columns "
            f"({INT32_MIN}..{INT32_MAX})"
        )
    owner = ""
    # Name the team (or competition) the field belongs to: "teams.3.id" alone means little.
    if len(loc) >= 2 and loc[0] in ("teams", "competitions") and isinstance(loc[1], int):
        try:
            item_id = payload[loc[0]][loc[1]].get("id")
        except (AttributeError, IndexError, KeyError, TypeError):
            item_id = None
        if item_id is not None:
            owner = f" ({loc[0][:-1]} {item_id})"
    return f"field '{where}'{owner}: {said}"


def parse_competitions(payload: Any, *, where: str = "GET /competitions") -> CompetitionsPayload:
    try:
        return CompetitionsPayload.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(f"{where}: unusable answer, {_first_problem(exc, payload)}") from None


def parse_teams(payload: Any, *, where: str) -> TeamsPayload:
    try:
        return TeamsPayload.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(f"{where}: unusable answer, {_first_problem(exc, payload)}") from None
