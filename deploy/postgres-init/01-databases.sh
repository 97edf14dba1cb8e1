#!/usr/bin/env bash
# Run by the postgres image's entrypoint once, when the data volume is empty. POSTGRES_DB
# (Dagster's run/event storage) already exists then; this adds the warehouse database so the
# two can be backed up, restored or wiped independently.
set -euo pipefail

warehouse_db="${POSTGRES_WAREHOUSE_DB:?set POSTGRES_WAREHOUSE_DB (docker-compose.yml does)}"

# \gexec runs the generated statement only when the database is missing; %I quotes the name.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=warehouse_db="$warehouse_db" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'warehouse_db', current_user)
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'warehouse_db')\gexec
SQL
