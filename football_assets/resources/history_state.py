"""Whether the history tables can stay as they are: no new distinct teams answer, the state the
last build recorded (its SQL, the delisted competitions), and no hand edit since (a trigger)."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from football_assets.resources.warehouse_schema import (
    HISTORY_ANSWERS,
    RAW_RESPONSES,
    TABLE_VERSIONS,
)

STATE_ROW = HISTORY_ANSWERS  # the table_versions row that records the history's state
TRIGGER = "history_edited"

# The teams answers no build saw yet (an anti-join, not a high-water mark: identities commit
# out of order when two runs store answers at once), each read once. Their teams were hashed as
# jsonb when stored (`teams_hash`: hashing here would read each payload once more); equal hashes
# and seasons make an answer a repeat of the one before it (64 bits: a collision is as unlikely
# as one of SHA-256's in practice).
# The competition is the answer's own (`raw_responses.competition_id`), as warehouse_sql reads it.
_NEW = """
CREATE TEMP TABLE hist_new ON COMMIT DROP AS
SELECT r.id AS answer_id,
       r.competition_id,
       r.fetched_at, (r.payload #>> '{{season,id}}')::numeric::integer AS season_id,
       coalesce(r.teams_hash::text, '') AS content
FROM {raw} AS r WHERE r.asset = 'raw_teams' AND r.partition_key <> ''
  AND NOT EXISTS (SELECT 1 FROM {hashes} AS h WHERE h.answer_id = r.id);
CREATE TEMP TABLE hist_prev ON COMMIT DROP AS
SELECT f.competition_id, p.answer_id, p.season_id, p.content
FROM (SELECT competition_id, min(answer_id) AS first FROM hist_new GROUP BY competition_id) AS f
CROSS JOIN LATERAL (SELECT h.answer_id, h.season_id, h.content FROM {hashes} AS h
                    WHERE h.competition_id = f.competition_id AND h.answer_id < f.first
                    ORDER BY h.answer_id DESC LIMIT 1) AS p;
INSERT INTO {hashes} (answer_id, competition_id, fetched_at, season_id, content)
SELECT answer_id, competition_id, fetched_at, season_id, content FROM hist_new
"""
# Whether some new answer says something its predecessor did not (or has none): only then can
# the history change through the teams answers.
_NEWS = """
WITH chain AS (SELECT competition_id, answer_id, season_id, content, false AS fresh
               FROM hist_prev
               UNION ALL
               SELECT competition_id, answer_id, season_id, content, true FROM hist_new),
compared AS (SELECT fresh, lag(answer_id) OVER w IS NOT NULL AS has_prev,
                    (content, season_id) IS NOT DISTINCT FROM (lag(content) OVER w,
                                                               lag(season_id) OVER w) AS same
             FROM chain WINDOW w AS (PARTITION BY competition_id ORDER BY answer_id))
SELECT EXISTS (SELECT 1 FROM compared WHERE fresh AND NOT (has_prev AND same))
"""
# The competitions the latest list no longer names, and since when: all the competition lists
# tell the history (a delisting closes memberships), so they are part of its state.
DELISTED = """
CREATE TEMP TABLE hist_delisted ON COMMIT DROP AS
WITH listed AS (SELECT (c ->> 'id')::numeric::integer AS id
                FROM (SELECT payload FROM {raw} WHERE asset = 'raw_competitions'
                      ORDER BY id DESC LIMIT 1) AS ll,
                     jsonb_array_elements(ll.payload -> 'competitions') AS c),
last_answer AS (SELECT competition_id, max(fetched_at) AS fetched_at FROM {hashes} AS h
                WHERE NOT EXISTS (SELECT 1 FROM listed WHERE listed.id = h.competition_id)
                GROUP BY competition_id)
SELECT l.competition_id,
       (SELECT min(c.fetched_at) FROM {raw} AS c
        WHERE c.asset = 'raw_competitions' AND c.fetched_at > l.fetched_at
          AND NOT (c.payload -> 'competitions')
                  @> jsonb_build_array(jsonb_build_object('id', l.competition_id))) AS at
FROM last_answer AS l
"""
# A statement on a history table by anyone but the build (whose record comes after, in its own
# transaction) spoils the recorded state: the next build then rebuilds in full.
_TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION {schema}.history_edited() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %I.{versions} SET inputs_version = %L WHERE table_name = %L',
                   TG_TABLE_SCHEMA, 'edited: ' || TG_TABLE_NAME, {row});
    RETURN NULL;
END $$
"""


def prepare(cursor: psycopg.Cursor[Any], schema: str) -> bool:
    """Hash the answers no build saw yet and list the delisted competitions (`hist_delisted`);
    True when some new answer is distinct from the one before it."""
    raw, hashes = sql.Identifier(schema, RAW_RESPONSES), sql.Identifier(schema, HISTORY_ANSWERS)
    cursor.execute("DROP TABLE IF EXISTS hist_prev, hist_new, hist_delisted")
    cursor.execute(sql.SQL(_NEW).format(raw=raw, hashes=hashes))
    cursor.execute(_NEWS)
    news = bool(cursor.fetchone()[0])  # type: ignore[index]
    cursor.execute(sql.SQL(DELISTED).format(raw=raw, hashes=hashes))
    cursor.execute("DROP TABLE hist_prev, hist_new")
    return news


def state(cursor: psycopg.Cursor[Any], code: str) -> str:
    """What the history depends on besides the distinct teams answers: `code` (its SQL and
    columns) and the delisted competitions with their times (TimeZone is UTC)."""
    cursor.execute(
        "SELECT encode(sha256(convert_to(%s || coalesce(string_agg(competition_id::text || '@'"
        " || coalesce(at::text, '-'), ',' ORDER BY competition_id), ''), 'UTF8')), 'hex')"
        " FROM hist_delisted",
        [hashlib.sha256(code.encode()).hexdigest()],
    )
    return str(cursor.fetchone()[0])  # type: ignore[index]


def guard(cursor: psycopg.Cursor[Any], tables: list[sa.Table]) -> bool:
    """Lock the history tables against writers until commit; True when both carry an enabled
    edit trigger. A table without one (new, dropped and recreated) gets it: the caller rebuilds."""
    names = [sql.Identifier(str(t.schema), t.name) for t in tables]
    # A hand edit committing between this build's decision and its record would go unseen.
    cursor.execute(
        sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.SQL(", ").join(names))
    )
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgname = %s AND tgenabled <> 'D' "
        "AND tgrelid = ANY(%s::regclass[])",
        [TRIGGER, [f'"{t.schema}"."{t.name}"' for t in tables]],
    )
    if cursor.fetchone()[0] == len(tables):  # type: ignore[index]
        return True
    schema = sql.Identifier(str(tables[0].schema))
    cursor.execute(
        sql.SQL(_TRIGGER_SQL).format(
            schema=schema, versions=sql.SQL(TABLE_VERSIONS), row=sql.Literal(STATE_ROW)
        )
    )
    for name in names:
        cursor.execute(
            sql.SQL(
                "DROP TRIGGER IF EXISTS {trigger} ON {table}; "
                "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                "ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.history_edited()"
            ).format(trigger=sql.Identifier(TRIGGER), table=name, schema=schema)
        )
    return False


def recorded(cursor: psycopg.Cursor[Any], schema: str) -> str | None:
    cursor.execute(
        sql.SQL("SELECT inputs_version FROM {} WHERE table_name = %s").format(
            sql.Identifier(schema, TABLE_VERSIONS)
        ),
        [STATE_ROW],
    )
    row = cursor.fetchone()
    return None if row is None else str(row[0])


def record(
    cursor: psycopg.Cursor[Any], schema: str, state: str, run_id: str, *, rebuilt: bool
) -> None:
    """Beside the tables' own records, in the same transaction: the state this build saw and,
    as `changed_run_id`, the last run that rebuilt the history (a skipped one keeps it)."""
    cursor.execute(
        sql.SQL(
            "INSERT INTO {t} (table_name, inputs_version, row_count, checked_run_id, "
            "changed_run_id) SELECT %s, %s, count(*), %s, %s FROM {hashes} "
            "ON CONFLICT (table_name) DO UPDATE SET inputs_version = EXCLUDED.inputs_version, "
            "row_count = EXCLUDED.row_count, checked_run_id = EXCLUDED.checked_run_id, "
            "checked_at = now(), "
            "changed_run_id = coalesce(EXCLUDED.changed_run_id, {t}.changed_run_id)"
        ).format(
            t=sql.Identifier(schema, TABLE_VERSIONS),
            hashes=sql.Identifier(schema, HISTORY_ANSWERS),
        ),
        [STATE_ROW, state, run_id, run_id if rebuilt else None],
    )
