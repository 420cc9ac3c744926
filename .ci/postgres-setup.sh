#!/usr/bin/env bash
# Starts the local PostgreSQL cluster and creates what the test suite needs:
# role `herald` (password `herald`, CREATEDB, and CREATEROLE so Herald can create
# the `herald_query` role its confined custom queries run as) and database `herald_test`.
# Idempotent: safe to run on every CI run and by hand. Prints the URL to
# export as HERALD_TEST_DATABASE_URL.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi

version=$(pg_lsclusters --no-header | awk 'NR == 1 { print $1 }')
cluster=$(pg_lsclusters --no-header | awk 'NR == 1 { print $2 }')
if [ -z "${version}" ]; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    cluster=main
    pg_createcluster "${version}" "${cluster}"
fi
if ! pg_lsclusters --no-header | awk -v v="${version}" -v c="${cluster}" '$1 == v && $2 == c { print $4 }' | grep -q online; then
    pg_ctlcluster "${version}" "${cluster}" start
fi

# Wait until the server accepts connections.
for _ in $(seq 1 30); do
    if su postgres -c "psql -qAtc 'SELECT 1'" >/dev/null 2>&1; then
        break
    fi
    sleep 1
done

psql_admin() {
    su postgres -c "psql -v ON_ERROR_STOP=1 -qAt -c \"$1\""
}

if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'herald'")" != "1" ]; then
    psql_admin "CREATE ROLE herald LOGIN PASSWORD 'herald' CREATEDB CREATEROLE"
else
    psql_admin "ALTER ROLE herald LOGIN PASSWORD 'herald' CREATEDB CREATEROLE"
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'herald_test'")" != "1" ]; then
    psql_admin "CREATE DATABASE herald_test OWNER herald"
fi

port=$(pg_lsclusters --no-header | awk -v v="${version}" -v c="${cluster}" '$1 == v && $2 == c { print $3 }')
echo "postgres://herald:herald@127.0.0.1:${port}/herald_test"
