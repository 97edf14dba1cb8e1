"""Create the warehouse database beside Dagster's on first start (ECS), then exit.

RDS creates only the instance's initial database (`dagster`, Dagster's storage); the warehouse
that DATABASE_URL names lives in a database of its own, so wiping or restoring one never touches
the other. The code server task runs this before the code server (container dependency
SUCCESS); it does nothing once the database exists. docker compose does the same with
deploy/postgres-init/01-databases.sh.
"""

from __future__ import annotations

import os
import sys

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


def main() -> int:
    warehouse = make_url(os.environ["DATABASE_URL"]).database
    if not warehouse:
        print("create_warehouse_database: DATABASE_URL names no database", file=sys.stderr)
        return 1
    # Dagster's storage connection (its database always exists) may create the other one.
    with psycopg.connect(
        host=os.environ["DAGSTER_PG_HOST"],
        port=int(os.environ.get("DAGSTER_PG_PORT") or 5432),
        user=os.environ["DAGSTER_PG_USERNAME"],
        password=os.environ["DAGSTER_PG_PASSWORD"],
        dbname=os.environ["DAGSTER_PG_DB"],
        sslmode=os.environ.get("PGSSLMODE", "prefer"),
        connect_timeout=30,
        autocommit=True,  # CREATE DATABASE cannot run inside a transaction
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (warehouse,)
        ).fetchone()
        if exists:
            print(f"create_warehouse_database: {warehouse} exists")
            return 0
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(warehouse)))
        except psycopg.errors.DuplicateDatabase:
            # Another code server task (a rolling deploy starts the new one beside the old)
            # created it first.
            print(f"create_warehouse_database: {warehouse} exists")
            return 0
        print(f"create_warehouse_database: created {warehouse}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
