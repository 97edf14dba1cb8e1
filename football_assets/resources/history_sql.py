"""The history tables, rebuilt set-based from every stored teams answer inside the load's
transaction unless history_state.py shows nothing could change (rules: docs/assets.md)."""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from football_assets.resources import history_state, table_changes
from football_assets.resources.table_changes import ChangeSet
from football_assets.resources.warehouse_schema import HISTORY_ANSWERS, RAW_RESPONSES
from football_assets.resources.warehouse_sql import LoadStats, session_settings, stats_of

TEAMS = "dim_teams_history"
MEMBERSHIP = "competition_membership_history"
_LAST = 9223372036854775807  # sorts a departure after the statements of the same instant

# An answer that lists the same teams, alike in every detail, in the same season as the answer
# before it adds nothing to either history (a matchday advanced, the same answer fetched
# again): only the others are read team by team, which keeps the rebuild's cost to the
# answers that changed something, plus one hash per answer (`history_state`).
_ANSWERS = """
CREATE TEMP TABLE hist_answers ON COMMIT DROP AS
WITH b AS (
    SELECT *, (content, season_id) IS NOT DISTINCT FROM (lag(content) OVER w, lag(season_id) OVER w)
           AS repeated
    FROM {hashes} WINDOW w AS (PARTITION BY competition_id ORDER BY answer_id))
SELECT answer_id, competition_id, fetched_at, season_id,
       row_number() OVER (PARTITION BY competition_id ORDER BY answer_id) AS n
FROM b WHERE NOT repeated
"""

_STATEMENTS = """
CREATE TEMP TABLE hist_statements ON COMMIT DROP AS
SELECT h.answer_id, h.competition_id, h.n, h.fetched_at, h.season_id, a.n AS ord, {columns}
FROM hist_answers AS h JOIN {raw} AS r ON r.id = h.answer_id
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(r.payload -> 'teams') = 'array'
    THEN r.payload -> 'teams' ELSE '[]' END) WITH ORDINALITY AS a(team, n)
"""

_MEMBERSHIP = """
INSERT INTO {stage} (competition_id, team_id, joined_at, season_id, left_at)
WITH app AS (SELECT DISTINCT competition_id, id AS team_id, n, fetched_at, season_id
             FROM hist_statements WHERE id IS NOT NULL),
islands AS (SELECT *, n - row_number() OVER (PARTITION BY competition_id, team_id, season_id
                                              ORDER BY n) AS grp FROM app),
spans AS (SELECT competition_id, team_id, season_id, min(fetched_at) AS joined_at,
                 max(n) AS last_n
          FROM islands GROUP BY competition_id, team_id, season_id, grp),
last_answer AS (SELECT competition_id, max(n) AS n FROM hist_answers GROUP BY competition_id)
SELECT s.competition_id, s.team_id, s.joined_at, s.season_id,
       CASE WHEN nxt.fetched_at IS NOT NULL THEN nxt.fetched_at
            WHEN s.last_n = l.n THEN d.at END
FROM spans AS s JOIN last_answer AS l USING (competition_id)
LEFT JOIN hist_delisted AS d USING (competition_id)
LEFT JOIN hist_answers AS nxt ON nxt.competition_id = s.competition_id AND nxt.n = s.last_n + 1
"""

_TEAMS = """
INSERT INTO {stage} ({cols}, valid_from, valid_to, is_current)
WITH departures AS (SELECT DISTINCT team_id AS id, left_at AS at FROM {membership}
                    WHERE left_at IS NOT NULL),
-- On leaving a competition the team is as its remaining competitions state it (their answers
-- as of then), or gone when none remain.
successors AS (
    SELECT e.id, e.at, w.answer_id, w.ord, {w_cols}, w.id IS NULL AS gone
    FROM departures AS e LEFT JOIN LATERAL (
        SELECT s.* FROM {membership} AS m
        CROSS JOIN LATERAL (SELECT max(a.n) AS n FROM hist_answers AS a
                            WHERE a.competition_id = m.competition_id AND a.fetched_at <= e.at)
                           AS la
        JOIN hist_statements AS s ON s.competition_id = m.competition_id AND s.n = la.n
                                 AND s.id = m.team_id
        WHERE m.team_id = e.id AND m.joined_at <= e.at AND (m.left_at IS NULL OR m.left_at > e.at)
        ORDER BY s.fetched_at DESC, s.answer_id DESC, s.ord DESC LIMIT 1) AS w ON true),
events AS (
    SELECT id, fetched_at AS at, answer_id AS k, ord, {others}, false AS gone
    FROM hist_statements WHERE id IS NOT NULL
    UNION ALL
    SELECT id, at, {last}, coalesce(ord, 0), {others}, gone FROM successors),
flagged AS (
    SELECT *, CASE WHEN gone THEN NULL ELSE ROW({others})::text END
              IS DISTINCT FROM lag(CASE WHEN gone THEN NULL ELSE ROW({others})::text END)
                  OVER (PARTITION BY id ORDER BY at, k, ord) AS starts
    FROM events),
starts AS (SELECT DISTINCT ON (id, at) * FROM flagged WHERE starts
           ORDER BY id, at, k DESC, ord DESC),
versions AS (SELECT *, lead(at) OVER (PARTITION BY id ORDER BY at) AS next_at FROM starts)
SELECT {cols}, at, next_at, next_at IS NULL FROM versions WHERE NOT gone
"""


def stage_history(
    cursor: psycopg.Cursor[Any], tables: dict[str, sa.Table], team_columns: list[str]
) -> None:
    """Stage both history tables in `new_<name>` (see module docstring), after
    `history_state.prepare`. `team_columns` are dim_teams' columns as `expression AS name` over
    `a.team`, one listed team's JSON."""
    teams, membership = tables[TEAMS], tables[MEMBERSHIP]
    raw = sql.Identifier(str(teams.schema), RAW_RESPONSES)
    cursor.execute("DROP TABLE IF EXISTS hist_answers, hist_statements")
    hashes = sql.Identifier(str(teams.schema), HISTORY_ANSWERS)
    cursor.execute(sql.SQL(_ANSWERS).format(hashes=hashes))
    cursor.execute(
        sql.SQL(_STATEMENTS).format(
            raw=raw,
            columns=sql.SQL(", ".join(team_columns)),  # type: ignore[arg-type]
        )
    )
    for table in (membership, teams):
        table_changes.create_stage(cursor, table)
    cursor.execute(sql.SQL(_MEMBERSHIP).format(stage=table_changes.staged(membership)))
    names = [
        c.name for c in teams.columns if c.name not in ("valid_from", "valid_to", "is_current")
    ]
    others = [n for n in names if n != "id"]
    cursor.execute(
        sql.SQL(_TEAMS).format(
            stage=table_changes.staged(teams),
            membership=table_changes.staged(membership),
            cols=sql.SQL(", ").join(map(sql.Identifier, names)),
            others=sql.SQL(", ").join(map(sql.Identifier, others)),
            w_cols=sql.SQL(", ").join(sql.Identifier("w", n) for n in others),
            last=sql.Literal(_LAST),
        )
    )


def _code(tables: dict[str, sa.Table], team_columns: list[str]) -> str:
    """The history's code: what, changed, makes the recorded state another one."""
    parts = [_ANSWERS, _STATEMENTS, history_state.DELISTED, _MEMBERSHIP, _TEAMS, *team_columns]
    return "\n".join(
        parts + [repr([c.name for c in tables[n].columns]) for n in (MEMBERSHIP, TEAMS)]
    )


def load_history(
    cursor: psycopg.Cursor[Any],
    tables: dict[str, sa.Table],
    team_columns: list[str],
    *,
    run_id: str = "",
) -> dict[str, LoadStats]:
    """Make both history tables what a full rebuild from the stored answers gives, writing only
    what differs (a hand edit is put right and the change set says what was). The rebuild is
    skipped when it cannot change them: no new answer distinct from the one before it, the
    state its last build recorded, and no statement on them since (`history_state`)."""
    schema = str(tables[TEAMS].schema)
    session_settings(cursor)  # the state hashes times as text
    trusted = history_state.guard(cursor, [tables[MEMBERSHIP], tables[TEAMS]])
    news = history_state.prepare(cursor, schema)
    state = history_state.state(cursor, _code(tables, team_columns))
    rebuild = news or not trusted or history_state.recorded(cursor, schema) != state
    stats: dict[str, LoadStats] = {}
    if not rebuild:
        for name in (MEMBERSHIP, TEAMS):
            stats[name] = stats_of(cursor, tables[name], ChangeSet(0, 0, 0), with_version=False)
    else:
        stage_history(cursor, tables, team_columns)
        for name in (MEMBERSHIP, TEAMS):
            changes = table_changes.compare(cursor, tables[name])
            if changes.changed:
                table_changes.apply(cursor, tables[name], changes)
            stats[name] = stats_of(cursor, tables[name], changes, with_version=changes.changed)
        cursor.execute(
            sql.SQL("DROP TABLE hist_answers, hist_statements, {}, {}").format(
                table_changes.staged(tables[MEMBERSHIP]), table_changes.staged(tables[TEAMS])
            )
        )
    history_state.record(cursor, schema, state, run_id, rebuilt=rebuild)
    cursor.execute("DROP TABLE hist_delisted")
    return stats


def compare_history(
    cursor: psycopg.Cursor[Any], tables: dict[str, sa.Table], team_columns: list[str]
) -> dict[str, table_changes.ChangeSet]:
    """What a rebuild from the stored answers would change in each history table (the caller
    rolls the transaction back): empty change sets unless someone edited them."""
    history_state.prepare(cursor, str(tables[TEAMS].schema))
    stage_history(cursor, tables, team_columns)
    return {name: table_changes.compare(cursor, tables[name]) for name in (MEMBERSHIP, TEAMS)}
