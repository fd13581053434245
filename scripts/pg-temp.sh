#!/usr/bin/env bash
# pg-temp.sh: a throwaway PostgreSQL server for the tests, never a system
# cluster: initdb into a temporary folder, run as an unprivileged user (as
# root: the user `postgres` of Debian's package, or `mnistd-pg`, created
# here when neither exists, since initdb refuses root), listening only on a
# unix socket in that folder (listen_addresses = ''), stopped and removed
# at the end. Authentication: trust for every role but `mnistd_pw`, which
# needs its password `right` (the wrong-password tests).
#
#   scripts/pg-temp.sh start DIR [--durable]
#                                    DIR must not exist; prints the URI of
#                                    the database `mnistd`. The tests' server
#                                    skips durability for speed (fsync,
#                                    synchronous_commit, full_page_writes
#                                    off: a crash of the machine may lose
#                                    it, which a throwaway cluster allows);
#                                    --durable keeps PostgreSQL's defaults
#                                    (every commit flushed to disk), as
#                                    production would, for the benchmark
#   scripts/pg-temp.sh stop DIR      stops the server, removes DIR
#   scripts/pg-temp.sh restart DIR   pg_ctl restart (the outage tests)
#   scripts/pg-temp.sh run CMD...    start in a new temporary folder, run CMD
#                                    with MNISTD_TEST_PG=<URI>, then stop and
#                                    remove; exits with CMD's status
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "pg-temp.sh: no PostgreSQL server binaries (make deps installs postgresql)" >&2
    exit 1
fi

# as_pg CMD...: runs CMD as the unprivileged user when we are root
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$pguser" -- "$@"
    else
        "$@"
    fi
}

pick_user() {
    pguser=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        if id postgres >/dev/null 2>&1; then
            pguser=postgres
        else
            id mnistd-pg >/dev/null 2>&1 ||
                useradd --system --no-create-home --shell /usr/sbin/nologin mnistd-pg
            pguser=mnistd-pg
        fi
    fi
}

uri_of() { printf 'postgresql:///mnistd?host=%s&user=postgres\n' "$1"; }

start() {
    local dir=$1 durable=${2:-}
    pick_user
    local parent
    parent=$(dirname "$dir")
    if ! as_pg test -x "$parent"; then
        echo "pg-temp.sh: $parent is not reachable by the user $pguser; put DIR in a folder it may enter (e.g. /tmp)" >&2
        exit 1
    fi
    mkdir "$dir"
    chmod 700 "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$pguser" "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --no-sync \
        --auth=trust >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg sh -c "cat > '$dir/data/pg_hba.conf'" <<'EOF'
local all mnistd_pw scram-sha-256
local all all trust
EOF
    as_pg sh -c "cat >> '$dir/data/postgresql.conf'" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 32MB
EOF
    if [ "$durable" != --durable ]; then
        as_pg sh -c "cat >> '$dir/data/postgresql.conf'" <<'EOF'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$bindir/psql" -q -h "$dir" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE mnistd" \
        -c "CREATE ROLE mnistd_pw LOGIN PASSWORD 'right'" \
        -c "GRANT ALL ON DATABASE mnistd TO mnistd_pw" >/dev/null
    as_pg "$bindir/psql" -q -h "$dir" -U postgres -d mnistd -v ON_ERROR_STOP=1 \
        -c "GRANT ALL ON SCHEMA public TO mnistd_pw" >/dev/null
    uri_of "$dir"
}

stop() {
    local dir=$1
    pick_user
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start)
    case "${3:-}" in
    '' | --durable) start "$2" "${3:-}" ;;
    *) echo "pg-temp.sh: start DIR [--durable]" >&2; exit 2 ;;
    esac
    ;;
stop) stop "$2" ;;
restart)
    pick_user
    as_pg "$bindir/pg_ctl" -D "$2/data" -l "$2/server.log" -m fast -w -t 60 restart >/dev/null
    ;;
run)
    shift
    dir=$(mktemp -u /tmp/mnistd-pg.XXXXXX)
    trap 'stop "$dir"' EXIT
    uri=$(start "$dir")
    set +e
    MNISTD_TEST_PG=$uri MNISTD_TEST_PG_DIR=$dir "$@"
    rc=$?
    set -e
    exit $rc
    ;;
*)
    echo "usage: pg-temp.sh start DIR [--durable] | stop DIR | restart DIR | run CMD..." >&2
    exit 2
    ;;
esac
