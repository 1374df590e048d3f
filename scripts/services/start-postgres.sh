#!/usr/bin/env bash
# Starts PostgreSQL 15 on 127.0.0.1:5432 and makes the test role and database:
# postgres://nova:nova@127.0.0.1:5432/nova_test
set -euo pipefail
if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_ctlcluster 15 main start
fi
for _ in $(seq 1 60); do
  if runuser -u postgres -- psql -qtAc 'select 1' >/dev/null 2>&1; then break; fi
  sleep 0.5
done
psql_su() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_su -c "select 1 from pg_roles where rolname='nova'")" != "1" ]; then
  psql_su -c "create role nova login password 'nova' createdb"
fi
if [ "$(psql_su -c "select 1 from pg_database where datname='nova_test'")" != "1" ]; then
  psql_su -c "create database nova_test owner nova"
fi
PGPASSWORD=nova psql -h 127.0.0.1 -U nova -d nova_test -qtAc 'select 1' >/dev/null || {
  echo "start-postgres: cannot connect as nova@127.0.0.1/nova_test" >&2
  exit 1
}
echo "postgres://nova:nova@127.0.0.1:5432/nova_test"
