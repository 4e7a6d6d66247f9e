#!/usr/bin/env bash
# Runs once, when a database container starts on an empty data dir (the postgres image's /docker-entrypoint-initdb.d
# hook): the same pg_hba.conf as walsaga/stack/postgres.py write_hba() with the compose network instead of
# 127.0.0.1. The admin from anywhere; the database's own roles to it alone; the CDC role replicates it only
# logically (no `replication` line, so no physical replication or base backup). The roles and their privileges are
# made by the init job (deploy/compose/init.py, walsaga/stack/roles.py).
set -eo pipefail
: "${WALSAGA_DB:?WALSAGA_DB is not set}"
db="$WALSAGA_DB"
cat > "$PGDATA/pg_hba.conf" <<HBA
# written by deploy/compose/postgres-init.sh
local   all   all   trust
host    all   ${POSTGRES_USER}   all   scram-sha-256
host    ${db}   ${db}_owner,${db}_app,${db}_reader,walsaga_cdc   all   scram-sha-256
HBA
