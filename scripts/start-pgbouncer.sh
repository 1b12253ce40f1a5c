#!/usr/bin/env bash
# Starts PgBouncer in transaction pooling mode (what Supabase's pooler and most hosted Postgres
# put in front of the database) on 127.0.0.1:6432, in front of the local server on :5432, so the
# tests can run the concurrency, crash and connection-loss cases through it. Installs Debian's
# pgbouncer package when it is missing. Idempotent: returns at once when one is listening.
# Prints the URL to use as TEST_PGBOUNCER_URL.
set -euo pipefail
PORT="${PGBOUNCER_PORT:-6432}"
DIR="${PGBOUNCER_DIR:-/tmp/omni-ingest-pgbouncer}"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"

if pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  echo "$URL"
  exit 0
fi
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >&2
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

mkdir -p "$DIR"
cat > "$DIR/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${PORT}
unix_socket_dir =
auth_type = trust
auth_file = ${DIR}/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
ignore_startup_parameters = extra_float_digits,options
server_reset_query =
logfile = ${DIR}/pgbouncer.log
pidfile = ${DIR}/pgbouncer.pid
INI
printf '"postgres" ""\n' > "$DIR/userlist.txt"
# PgBouncer refuses to run as root.
if [ "$(id -u)" = "0" ]; then
  chown -R postgres "$DIR"
  su postgres -s /bin/sh -c "$PGBOUNCER -d $DIR/pgbouncer.ini" >&2
else
  "$PGBOUNCER" -d "$DIR/pgbouncer.ini" >&2
fi
for _ in $(seq 1 50); do
  pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null && break
  sleep 0.1
done
pg_isready -h 127.0.0.1 -p "$PORT" -q
echo "$URL"
