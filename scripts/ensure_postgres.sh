#!/usr/bin/env bash
# Make sure a PostgreSQL server for effnet's study tests runs on loopback.
#
# Installs Debian's postgresql with apt-get when it is missing (as root, or with password-less
# sudo), keeps a private cluster in $EFFNET_PG_DIR (default /tmp/effnet-postgres) listening only on
# 127.0.0.1:$EFFNET_PG_PORT (default 55432), and creates the role and database the tests use.
# Idempotent: rerunning it leaves a running server alone. Prints nothing on success; the SQLAlchemy
# URL of the test database is written to $EFFNET_PG_URL_FILE (default $EFFNET_PG_DIR/url).
# `ensure_postgres.sh stop` stops that cluster (the storage-fault test stops and restarts a private
# one, with its own EFFNET_PG_DIR and EFFNET_PG_PORT, so the shared server is never touched).
set -euo pipefail

PG_DIR=${EFFNET_PG_DIR:-/tmp/effnet-postgres}
PORT=${EFFNET_PG_PORT:-55432}
URL_FILE=${EFFNET_PG_URL_FILE:-$PG_DIR/url}
ROLE=effnet
PASSWORD=effnet
DB=effnet_test

fail() { echo "ensure_postgres: $*" >&2; exit 1; }

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1
    fi
}

if ! BINDIR=$(find_bindir); then
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq >/dev/null 2>&1 || fail "PostgreSQL is not installed and apt-get update failed (needs root or sudo)"
    as_root apt-get install -y -qq postgresql >/dev/null 2>&1 || fail "apt-get install postgresql failed"
    BINDIR=$(find_bindir) || fail "postgresql was installed but initdb/pg_ctl were not found"
fi

# The server refuses to run as root: as root, run it as the 'postgres' system user.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    RUN=(runuser -u postgres --)
    OWNER=postgres
else
    RUN=()
    OWNER=$(id -un)
fi

if [ "${1:-}" = "stop" ]; then
    [ -s "$PG_DIR/data/PG_VERSION" ] || exit 0
    "${RUN[@]}" "$BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    exit 0
fi

mkdir -p "$PG_DIR"
chown "$OWNER" "$PG_DIR"
chmod 755 "$PG_DIR"
DATA=$PG_DIR/data
SOCK=$PG_DIR/sock
LOG=$PG_DIR/server.log

# One caller at a time (parallel test workers, make and a test running together).
exec 9>"$PG_DIR/.lock"
flock 9

# (The server must not inherit the lock's descriptor, hence "9>&-" where it is started.)
if [ ! -s "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    "${RUN[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres -E UTF8 --auth-local=trust --auth-host=scram-sha-256 \
        >"$PG_DIR/initdb.log" 2>&1 || fail "initdb failed; see $PG_DIR/initdb.log"
fi
"${RUN[@]}" mkdir -p "$SOCK"

if ! "${RUN[@]}" "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    "${RUN[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK" start >/dev/null 2>&1 9>&- \
        || fail "the server did not start (port $PORT in use?); last log lines: $(tail -n 3 "$LOG" 2>/dev/null | tr '\n' ' ')"
fi

psql_admin() {
    "${RUN[@]}" "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres -tA "$@"
}
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >/dev/null || fail "could not create role $ROLE"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null || fail "could not create database $DB"
fi

URL="postgresql+psycopg2://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
mkdir -p "$(dirname "$URL_FILE")"
printf '%s\n' "$URL" > "$URL_FILE.tmp.$$"
mv -f "$URL_FILE.tmp.$$" "$URL_FILE"
