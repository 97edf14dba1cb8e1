"""Names a person can read: the competitions partitions keyed by code, raw_competitions'
Markdown table of key, id, code, name and teams, and raw_teams' count said as what it counts."""

import dagster as dg

from football_assets.assets.labels import HEADER, competitions_markdown
from football_assets.refresh import refresh


def competition(id_: int, name: str, code: str | None) -> dict[str, object]:
    return {"id": id_, "name": name, "code": code, "area": {"name": "X"}}


def rows(table: str) -> list[list[str]]:
    """The table's body rows, split on the unescaped column separators."""
    body = table.splitlines()[2:]
    out = []
    for line in body:
        cells, cell, escaped = [], "", False
        for char in line.strip()[1:-1]:
            if escaped:
                cell, escaped = cell + char, False
            elif char == "\\":
                escaped = True
            elif char == "|":
                cells.append(cell.strip())
                cell = ""
            else:
                cell += char
        cells.append(cell.strip())
        out.append(cells)
    return out


def test_every_competition_is_one_row_whatever_its_name() -> None:
    payload = {
        "competitions": [
            competition(2021, "Premier League", "PL"),
            competition(9001, "A | B\nC / D", None),  # no code; separators and a line break
            competition(9002, 'Süper "Lig" *1*', "TSL"),
            competition(9003, "Copa [x](javascript:alert)", "PL"),  # a code another shares
        ]
    }
    # Keys: the code, or the id without one (9001) or where two share one (2021 and 9003).
    table = competitions_markdown(payload, {"2021": 20, "TSL": 0})
    assert table.splitlines()[0] == HEADER == "| key | id | code | name | teams (last fetched) |"
    found = rows(table)
    assert [r[:4] for r in found] == [
        ["2021", "2021", "PL", "Premier League"],
        ["9001", "9001", "—", "A | B C / D"],
        ["TSL", "9002", "TSL", 'Süper "Lig" *1*'],
        ["9003", "9003", "PL", "Copa [x](javascript:alert)"],
    ]
    teams = [r[4] for r in found]
    assert teams[0] == "[20](/assets/raw_teams?view=partitions&partition=2021)"
    assert teams[1] == "[raw_teams 9001](/assets/raw_teams?view=partitions&partition=9001)"
    assert teams[2] == "[0](/assets/raw_teams?view=partitions&partition=TSL)"


def test_raw_competitions_names_each_partition_and_raw_teams_says_what_it_counts(
    snapshot_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    def latest(name: str, partition: str | None = None) -> dict[str, object]:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(name),
                asset_partitions=[partition] if partition else None,
            ),
            limit=1,
        ).records
        materialization = records[0].asset_materialization
        assert materialization is not None
        return {k: v.value for k, v in materialization.metadata.items()}

    refresh(snapshot_defs, instance)
    first = rows(str(latest("raw_competitions")["competitions"]))
    assert len(first) == 13
    assert first[0][:4] == ["WC", "2000", "WC", "FIFA World Cup"]
    # The teams come after the list: the cell names the partition to open instead.
    assert all(r[4].startswith(f"[raw_teams {r[0]}](") for r in first)

    refresh(snapshot_defs, instance, force=True)
    again = {r[0]: r for r in rows(str(latest("raw_competitions")["competitions"]))}
    assert again["PL"][1:4] == ["2021", "PL", "Premier League"]
    assert again["PL"][4].startswith("[20](") and again["BSA"][4].startswith("[0](")

    premier_league = latest("raw_teams", "PL")
    assert premier_league["teams_in_this_competition"] == 20
    assert premier_league["competition"] == "Premier League"
    assert premier_league["competition_code"] == "PL"
    assert premier_league["competition_id"] == 2021
    assert "dagster/row_count" not in premier_league
