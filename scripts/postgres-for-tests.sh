#!/usr/bin/env bash
# A PostgreSQL server for the test suite, on 127.0.0.1 only; prints its URL on standard output.
#
#   scripts/postgres-for-tests.sh         start it if it is not running (installs Debian's postgresql when missing)
#   scripts/postgres-for-tests.sh stop    stop it
#
# Idempotent and quick when the server already runs. The cluster lives in a private directory under the system's
# temporary directory (POOLGATE_TEST_PG_DIR overrides it), owned by the user that runs the server: `postgres` when
# this script runs as root (PostgreSQL refuses to run as root), else the calling user. Trust authentication on
# loopback and fsync off: for tests only, never for data you keep.
set -euo pipefail

BASE="${POOLGATE_TEST_PG_DIR:-${TMPDIR:-/tmp}/poolgate-test-postgres}"
DATA="$BASE/data"
PORT_FILE="$BASE/port"
LOG="$BASE/server.log"

say() { echo "postgres-for-tests: $*" >&2; }

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return 0
    fi
    return 1
}

install_postgres() {
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is not installed and this is not root: install it (sudo apt-get install postgresql) and rerun"
        exit 1
    fi
    say "installing Debian's postgresql package (once)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    # The package may start a system cluster on port 5432; the tests use their own and leave that one alone.
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command as the server's owner (postgres when we are root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() {
    echo "postgresql://postgres@127.0.0.1:$(cat "$PORT_FILE")/postgres"
}

running() {
    [ -f "$PORT_FILE" ] && [ -f "$DATA/postmaster.pid" ] || return 1
    as_owner "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1 || return 1
    "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$(cat "$PORT_FILE")" -t 5
}

BINDIR="$(find_bindir || true)"
if [ "${1:-start}" = stop ]; then
    if [ -n "$BINDIR" ] && [ -f "$DATA/postmaster.pid" ]; then
        as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
        say "stopped"
    fi
    exit 0
fi
if [ -z "$BINDIR" ]; then
    install_postgres
    BINDIR="$(find_bindir)" || { say "postgresql was installed but initdb is not found"; exit 1; }
fi

if running; then
    url
    exit 0
fi

mkdir -p "$BASE"
chmod 700 "$BASE"
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$BASE" --shell /usr/sbin/nologin postgres
    chown postgres "$BASE"
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    as_owner "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 \
        || { say "initdb failed:"; cat "$BASE/initdb.log" >&2; exit 1; }
fi
# A server of ours that runs but does not answer where we expect it is stopped; a pid file left by a killed server
# (or a rebooted machine) is removed, or pg_ctl would refuse to start a new one.
if [ -f "$DATA/postmaster.pid" ]; then
    pid="$(head -n 1 "$DATA/postmaster.pid")"
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
        as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m immediate -w -t 10 >/dev/null 2>&1 || true
    fi
    rm -f "$DATA/postmaster.pid"
fi
PORT="$(free_port)"
OPTIONS="-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$BASE -c fsync=off"
OPTIONS="$OPTIONS -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
started=no
for attempt in 1 2 3; do  # the backends of a killed server may take a moment to go away
    if as_owner "$BINDIR/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 30 -o "$OPTIONS" >/dev/null 2>&1; then
        started=yes
        break
    fi
    rm -f "$DATA/postmaster.pid"
    sleep "$attempt"
done
if [ "$started" != yes ]; then
    say "the server did not start; the end of its log ($LOG):"
    tail -n 30 "$LOG" >&2 || true
    exit 1
fi
echo "$PORT" >"$PORT_FILE"
url
