#!/bin/sh
# Creates Temporal's two PostgreSQL databases and applies their schema migrations, with the
# server's own SQL tool (temporal-sql-tool of the same version, whose schema files are built in:
# `--schema-name`). Run by docker-compose's `temporal-schema` job (temporalio/admin-tools image)
# and by the native test cluster (src/local-stack/cluster.ts, TEMPORAL_SQL_TOOL = the tool it built).
# Idempotent: `create` ignores an existing database, `setup-schema -v 0.0` only creates the version
# tables, and `update-schema` applies just the pending versions, which is also how a newer server
# migrates the data.
# Env: POSTGRES_SEEDS, DB_PORT (default 5432), POSTGRES_USER, SQL_PASSWORD, TEMPORAL_SQL_TOOL.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"

for db in temporal:temporal temporal_visibility:visibility; do
  name=${db%%:*}
  schema=${db#*:}
  sql() {
    "${TEMPORAL_SQL_TOOL:-temporal-sql-tool}" --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
      -u "$POSTGRES_USER" --db "$name" "$@"
  }
  sql create
  sql setup-schema -v 0.0
  sql update-schema --schema-name "postgresql/v12/$schema"
  echo "temporal-schema: database $name is at the current schema"
done
