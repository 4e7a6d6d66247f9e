#!/usr/bin/env bash
# Runs once, when a database container starts on an empty data dir (the postgres image's /docker-entrypoint-initdb.d
# hook), as the admin role: what walsaga/stack/postgres.py ensure_roles() does for the local stack. The app role owns
# its database; the CDC role may only log in and replicate (SELECT on the outbox is granted by the migration).
# Passwords arrive as psql variables, so psql quotes them; they are never pasted into the SQL text.
set -eo pipefail
: "${WALSAGA_DB:?WALSAGA_DB is not set}"
: "${WALSAGA_APP_PASSWORD:?WALSAGA_APP_PASSWORD is not set}"
: "${WALSAGA_CDC_PASSWORD:?WALSAGA_CDC_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
    -v db="$WALSAGA_DB" -v app_role="${WALSAGA_DB}_app" \
    -v app_password="$WALSAGA_APP_PASSWORD" -v cdc_password="$WALSAGA_CDC_PASSWORD" <<'SQL'
CREATE ROLE :"app_role" WITH LOGIN PASSWORD :'app_password';
CREATE ROLE walsaga_cdc WITH LOGIN REPLICATION PASSWORD :'cdc_password';
CREATE DATABASE :"db" OWNER :"app_role";
\connect :"db"
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL

# Same line as the local stack's pg_hba.conf, with the Connect container's address instead of 127.0.0.1.
echo "host replication walsaga_cdc all scram-sha-256" >> "$PGDATA/pg_hba.conf"
