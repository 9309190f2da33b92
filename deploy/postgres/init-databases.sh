#!/bin/sh
# Runs once, when the PostgreSQL volume is new (docker-entrypoint-initdb.d): a role and
# databases for Temporal, and a role and a database for Tandem's records, each owning
# only its own. Passwords come from the environment (see deploy/env.example).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" \
    -v tandem_password="$TANDEM_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE ROLE tandem LOGIN PASSWORD :'tandem_password';
CREATE DATABASE tandem OWNER tandem;
SQL
