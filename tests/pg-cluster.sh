#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (Debian's `postgresql`): on a Unix socket in DIR,
# no TCP port (nothing to race for, nothing reachable from outside), trust authentication for
# the role `hoinghi`, fsync off (durability is SQLite's test; this one checks the schema and
# the queries, and fsync would only slow each test's CREATE DATABASE).
#
#   tests/pg-cluster.sh start DIR   starts it (waiting until it accepts connections) and prints
#                                   the URL for HOINGHI_TEST_POSTGRES_URL
#   tests/pg-cluster.sh stop DIR    stops it (DIR is the caller's to delete)
#
# initdb refuses to run as root: as root the cluster belongs to the `postgres` user the package
# creates.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:?start or stop}
dir=${2:?the cluster directory}
case "$cmd" in
start)
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
  fi
  as_owner "$bin/initdb" -D "$dir/data" -U hoinghi --auth=trust -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log"
  # -w: pg_ctl polls until the server accepts connections (60 s at most), then returns.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-k $dir -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
  echo "postgres:///postgres?host=$dir&user=hoinghi"
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
