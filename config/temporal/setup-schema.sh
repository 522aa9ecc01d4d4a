#!/bin/sh
# docker-compose `temporal-schema` job (temporalio/admin-tools image): creates Temporal's
# PostgreSQL databases and applies their schema migrations. Idempotent: `create` ignores an
# existing database, `setup-schema -v 0.0` only creates the version tables, and `update-schema`
# applies just the pending versions, which is also how a newer Temporal image migrates the data.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"

for db in temporal:temporal temporal_visibility:visibility; do
  name=${db%%:*}
  schema=${db#*:}
  sql() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" \
      --db "$name" "$@"
  }
  sql create
  sql setup-schema -v 0.0
  sql update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
  echo "temporal-schema: database $name is at the current schema"
done
