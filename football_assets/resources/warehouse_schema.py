"""The warehouse's tables, declared once (columns, keys, foreign keys) with their Dagster column
metadata, the schema-name check and the schema's one advisory lock; all DDL is compiled from
these declarations."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from football_assets.resources.warehouse_errors import WarehouseError

if TYPE_CHECKING:  # settings checks the schema name here, before Dagster is imported
    import dagster as dg

RAW_RESPONSES = "raw_responses"
TABLE_VERSIONS = "table_versions"
HISTORY_ANSWERS = "history_answers"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SchemaNameError(WarehouseError, ValueError):
    """FOOTBALL_DB_SCHEMA is unusable; str() is one line naming it and what to use."""


def validate_schema_name(name: str) -> str:
    """The name, if it is a plain, private, lower-case identifier (it goes into every statement)."""
    if not _IDENTIFIER.fullmatch(name):
        raise SchemaNameError(
            f"FOOTBALL_DB_SCHEMA={name!r} is not a valid schema name: use lower-case letters, "
            "digits and underscores, starting with a letter (e.g. 'football')."
        )
    if name == "public" or name.startswith("pg_"):
        raise SchemaNameError(
            f"FOOTBALL_DB_SCHEMA={name!r} is reserved: the warehouse keeps to a private schema "
            "such as 'football'."
        )
    return name


def lock_schema(cursor: psycopg.Cursor[Any], schema: str) -> None:
    """Hold the schema's one advisory lock until the transaction ends: whatever changes its
    tables or their catalog (a load, a healing) queues here, one at a time."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))


# Generated, so "which competition is an answer about" has one definition, read without the
# payload: a whole number (2021.0 too) in the answer, never an error on a value out of range.
ANSWER_COMPETITION = (
    "coalesce(CASE WHEN jsonb_typeof(payload #> '{competition,id}') = 'number' "
    "AND (payload #>> '{competition,id}') ~ '^[0-9]{1,9}(\\.0+)?$' "
    "THEN (payload #>> '{competition,id}')::numeric::integer END, "
    "CASE WHEN partition_key ~ '^[0-9]{1,9}$' THEN partition_key::integer END)"
)


def _define_tables(schema: str) -> sa.MetaData:
    metadata = sa.MetaData(schema=schema)
    sa.Table(
        RAW_RESPONSES,
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("asset", sa.Text, nullable=False),
        sa.Column("partition_key", sa.Text, nullable=False, comment="'' when unpartitioned"),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "stored_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("payload_sha256", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column(
            "payload_exact",
            sa.Text,
            comment="The answer verbatim (JSON, non-ASCII escaped) when `payload` had to replace "
            "characters JSONB cannot hold (\\u0000, lone surrogates); NULL otherwise.",
        ),
        sa.Column("sanitized_fields", sa.ARRAY(sa.Text), comment="The fields replaced."),
        sa.Column(
            "teams_hash",
            sa.BigInteger,
            sa.Computed("jsonb_hash_extended(payload -> 'teams', 0)", persisted=True),
            comment="The answer's teams hashed as JSONB when stored (NULL without teams): the "
            "history build tells a repeated answer without reading its payload again.",
        ),
        sa.Column(
            "competition_id",
            sa.Integer,
            sa.Computed(ANSWER_COMPETITION, persisted=True),
            comment="The competition the answer is about: its own competition.id, else an "
            "id-keyed partition's key (answers stored before partitions were codes); NULL for "
            "the competition list.",
        ),
        sa.Index("raw_responses_latest", "asset", "partition_key", "id"),
        comment="Every API response the pipeline received, append-only.",
    )
    sa.Table(
        "dim_competitions",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("code", sa.Text),
        sa.Column("type", sa.Text),
        sa.Column("plan", sa.Text),
        sa.Column("area_id", sa.Integer),
        sa.Column("area_name", sa.Text),
        sa.Column("area_code", sa.Text),
        sa.Column("emblem", sa.Text),
        sa.Column("current_season_start", sa.Date),
        sa.Column("current_season_end", sa.Date),
        sa.Column("last_updated", sa.DateTime(timezone=True)),
        comment="Competitions as the API lists them now.",
    )
    sa.Table(
        "dim_teams",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("short_name", sa.Text),
        sa.Column("tla", sa.Text),
        sa.Column("crest", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("website", sa.Text),
        sa.Column("founded", sa.Integer),
        sa.Column("club_colors", sa.Text),
        sa.Column("venue", sa.Text),
        sa.Column("area_id", sa.Integer),
        sa.Column("area_name", sa.Text),
        sa.Column("area_code", sa.Text),
        sa.Column("last_updated", sa.DateTime(timezone=True)),
        comment="One row per team, whatever the number of competitions it plays in.",
    )
    sa.Table(
        "fact_competitions",
        metadata,
        # ON DELETE CASCADE: a team or competition that left the API leaves its pairs with it.
        sa.Column(
            "competition_id",
            sa.Integer,
            sa.ForeignKey("dim_competitions.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "team_id",
            sa.Integer,
            sa.ForeignKey("dim_teams.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Index("fact_competitions_team", "team_id"),
        comment="Which team plays in which competition, per the latest API answer.",
    )
    # History: versions outlive the current rows (a team gone from every competition keeps its
    # past), so no foreign key to dim_teams or dim_competitions; keys and CHECKs instead.
    sa.Table(
        "dim_teams_history",
        metadata,
        *[c._copy() for c in metadata.tables[f"{schema}.dim_teams"].columns],
        sa.Column("valid_from", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), comment="NULL while current"),
        sa.Column("is_current", sa.Boolean, nullable=False),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", "valid_interval"),
        sa.CheckConstraint("is_current = (valid_to IS NULL)", "current_is_open"),
        sa.Index("dim_teams_history_current", "id", unique=True, postgresql_where="is_current"),
        comment="One row per version of a team; times are when the API said it (fetched_at).",
    )
    sa.Table(
        "competition_membership_history",
        metadata,
        sa.Column("competition_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("team_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("season_id", sa.Integer),
        sa.Column("left_at", sa.DateTime(timezone=True), comment="NULL while a member"),
        sa.CheckConstraint("left_at IS NULL OR left_at > joined_at", "valid_interval"),
        sa.Index("competition_membership_history_team", "team_id"),
        comment="Which team played in which competition (and season), from when until when.",
    )
    sa.Table(
        HISTORY_ANSWERS,
        metadata,
        sa.Column("answer_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("competition_id", sa.Integer, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("season_id", sa.Integer),
        sa.Column("content", sa.Text, nullable=False, comment="hash of the answer's teams (jsonb)"),
        sa.Index("history_answers_competition", "competition_id", "answer_id"),
        comment="Derived from raw_responses (rebuilt when dropped): each teams answer's hash, "
        "so the history build reads team by team only answers that changed something.",
    )
    sa.Table(
        TABLE_VERSIONS,
        metadata,
        sa.Column("table_name", sa.Text, primary_key=True),
        sa.Column(
            "inputs_version",
            sa.Text,
            nullable=False,
            comment="The code version and raw answers the last build read (a hash of them).",
        ),
        sa.Column("data_version", sa.Text, comment="SHA-256 of the rows, as of the last change."),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("checked_run_id", sa.Text, nullable=False, comment="The last build's run."),
        sa.Column(
            "checked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("changed_run_id", sa.Text, comment="The last run that changed its rows."),
        comment="Bookkeeping, written with the tables: what each table's last build saw, so a "
        "build that changed no row (and so recorded no materialization) still counts.",
    )
    return metadata


@cache
def tables(schema: str) -> sa.MetaData:
    return _define_tables(validate_schema_name(schema))


def table(schema: str, name: str) -> sa.Table:
    return tables(schema).tables[f"{schema}.{name}"]


def column_schema(schema: str, table_name: str) -> dg.TableSchema:
    """The table's columns as Dagster metadata (`dagster/column_schema`)."""
    import dagster as dg

    declared = table(schema, table_name)
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type).lower(),
                constraints=dg.TableColumnConstraints(
                    nullable=bool(column.nullable),
                    unique=bool(column.primary_key and len(declared.primary_key.columns) == 1),
                    other=[f"references {fk.target_fullname}" for fk in column.foreign_keys],
                ),
            )
            for column in declared.columns
        ]
    )
