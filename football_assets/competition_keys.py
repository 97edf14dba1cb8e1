"""The competitions partitions' keys: each competition's code (PL, BL1), or its id where the API
gives no usable code or two competitions share one; and the reverse, a code or an id to a key."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from football_assets.payloads import PayloadError, parse_competitions

# A code becomes a key only if it is plain: Dagster refuses some characters in keys, a URL or a
# range tag would need others escaped, and a code of digits could be another competition's id.
_PLAIN_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


class UnknownCompetition(ValueError):
    """A competition named on the command line that no partition key stands for."""


def _usable(code: str | None) -> str | None:
    if code is None or not _PLAIN_CODE.fullmatch(code) or code.isdigit():
        return None
    return code


def competition_keys(payload: Any) -> dict[str, int]:
    """{partition key: competition id} of the listed competitions, in id order. The key is the
    code; the id (as text) where the code is missing, not plain, or shared (case aside) by
    another listed competition, so both fall back, whatever order the API lists them in."""
    competitions = {c.id: c for c in parse_competitions(payload).competitions}
    codes = {cid: _usable(c.code) for cid, c in competitions.items()}
    shared = Counter(code.upper() for code in codes.values() if code)
    keys: dict[str, int] = {}
    for cid in sorted(competitions):
        code = codes[cid]
        keys[code if code and shared[code.upper()] == 1 else str(cid)] = cid
    return keys


def recorded_keys(instance: Any) -> dict[str, int]:
    """{partition key: id} as raw_competitions' latest materialization recorded them (its
    `partition_keys`); empty before the first run of this code."""
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey("raw_competitions"))
    recorded = event.asset_materialization if event else None
    entry = recorded.metadata.get("partition_keys") if recorded else None
    return dict(entry.value) if entry is not None else {}


def key_names(payload: Any) -> tuple[dict[str, int], dict[str, str]]:
    """({partition key: competition id}, {partition key: name}) of a competition list; both
    empty when it is unusable."""
    try:
        keys = competition_keys(payload)
        names = {c.id: c.name for c in parse_competitions(payload).competitions}
    except PayloadError:
        return {}, {}
    return keys, {key: names[cid] for key, cid in keys.items()}


def ids_of(keys: Sequence[str], listed: Mapping[str, int]) -> dict[str, int]:
    """{partition key: competition id}, by the stored competition list `listed`. A key of
    digits is an id (a competition without a code of its own, or an instance still keyed by
    ids); a code the list does not hold raises UnknownCompetition."""
    ids: dict[str, int] = {}
    for key in keys:
        if key not in listed and not key.isdigit():
            raise UnknownCompetition(
                f"partition {key}: no competition in the latest stored competition list has "
                "this code; materialize raw_competitions (or run football-assets refresh), "
                "which renews the partitions"
            )
        ids[key] = listed[key] if key in listed else int(key)
    return ids


def answer_is_about(payload: dict[str, Any], competition_id: int, where: str) -> None:
    """The tables read an answer's competition from its `competition.id`: raise PayloadError
    unless it is the competition asked for (a whole number: 2021 or 2021.0)."""
    summary = payload.get("competition")
    said = summary.get("id") if isinstance(summary, dict) else None
    if isinstance(said, float) and said.is_integer():
        said = int(said)
    if not isinstance(said, int) or isinstance(said, bool):
        raise PayloadError(
            f"{where}: unusable answer, field 'competition.id': {said!r} is not an id"
        )
    if said != competition_id:
        raise PayloadError(
            f"{where}: unusable answer, it is about competition {said}, not {competition_id}"
        )


def competition_summary(payload: dict[str, Any], field: str) -> str | None:
    """A text field of a teams answer's `competition` (name, code), if well-formed: not read by
    the tables, so not checked on arrival."""
    summary = payload.get("competition")
    value = summary.get(field) if isinstance(summary, dict) else None
    return value if isinstance(value, str) else None


def renamed(removed: Sequence[str], keys: Mapping[str, int]) -> dict[str, str]:
    """{old key: new key} of removed keys that were a competition's id (or an earlier code of
    it) and now are its code: an instance partitioned by ids, migrated."""
    by_id = {str(cid): key for key, cid in keys.items()}
    return {old: by_id[old] for old in removed if old in by_id and by_id[old] != old}


def resolve(
    choices: Sequence[str], registered: Sequence[str], keys: Mapping[str, int]
) -> list[str]:
    """The registered partition keys that `choices` name, each a key (a code, any case) or a
    competition id; raises UnknownCompetition naming the first that names none. An instance
    still keyed by ids (not refreshed since) takes codes too."""
    by_text = {key.upper(): key for key in registered}
    by_code = {key.upper(): cid for key, cid in keys.items()}
    by_id = {cid: key for key, cid in keys.items()}
    found: list[str] = []
    for choice in choices:
        text = str(choice).strip()
        key = by_text.get(text.upper())
        if key is None:
            cid = int(text) if text.isdigit() else by_code.get(text.upper())
            candidates = [by_id.get(cid, ""), str(cid)] if cid is not None else []
            key = next((k for k in candidates if k in registered), None)
        if key is None:
            raise UnknownCompetition(_unknown(text, registered, keys))
        if key not in found:
            found.append(key)
    return found


def _unknown(text: str, registered: Sequence[str], keys: Mapping[str, int]) -> str:
    if not registered:
        return f"unknown competition {text}: none known yet (run a full refresh first)"
    valid = ", ".join(registered)
    return (
        f"unknown competition {text}; valid: {valid} "
        "(a code in any case, or a competition's id)"
        + ("" if keys else "; ids work after a full refresh")
    )
