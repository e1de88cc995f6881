#!/usr/bin/env bash
# A PostgreSQL server for the production instance (dagster.yaml): CI, `make test`, or a
# developer who wants the production storage locally.
#
#   .ci/postgres.sh [COMMAND [ARGS...]]
#
# If DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD and
# DAGSTER_PG_DB are all set, that server is used as it is (only the login is checked).
# Otherwise a local server is made ready: the Debian package `postgresql` is installed if
# missing, a cluster is created and started if none runs (as root, through pg_ctlcluster,
# which runs the server as the `postgres` user), and a role `cs_pipeline` (LOGIN CREATEDB, with
# a password) owning a database `cs_pipeline` is created. The five variables are then written
# to .postgres.env at the top of the project (mode 600, git-ignored; the password is random,
# made once): `set -a; . ./.postgres.env; set +a` puts them in a shell.
#
# Then COMMAND runs with the five variables exported. No server, no login: exit 1, loudly.
# The password is never printed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ENV_FILE="${DAGSTER_PG_ENV_FILE:-$ROOT/.postgres.env}"
ROLE=cs_pipeline
DB=cs_pipeline

die() {
    {
        echo
        echo "################################################################################"
        echo "postgres.sh: FAILED: $*"
        echo "The production-instance test needs a PostgreSQL server. Run .ci/postgres.sh as root"
        echo "(it installs and starts one), or set DAGSTER_PG_HOST, DAGSTER_PG_PORT,"
        echo "DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD and DAGSTER_PG_DB for a server of yours."
        echo "################################################################################"
    } >&2
    exit 1
}

say() { echo "postgres.sh: $*" >&2; }

as_superuser() {  # psql as the cluster's superuser `postgres`, SQL on stdin (never on a command line)
    runuser -u postgres -- psql --no-psqlrc -X -q -v ON_ERROR_STOP=1 -p "$1" -d postgres
}

check_login() {  # the server accepts DAGSTER_PG_* over TCP (a few tries: it may be starting)
    local attempt errors
    errors="$(mktemp)"
    for attempt in 1 2 3 4 5; do
        if PGPASSWORD="$DAGSTER_PG_PASSWORD" PGCONNECT_TIMEOUT=5 psql --no-psqlrc -X -q -At \
            -h "$DAGSTER_PG_HOST" -p "$DAGSTER_PG_PORT" -U "$DAGSTER_PG_USERNAME" -d "$DAGSTER_PG_DB" \
            -c "SELECT 1" >/dev/null 2>"$errors"; then
            rm -f "$errors"
            return 0
        fi
        sleep 1
    done
    cat "$errors" >&2
    rm -f "$errors"
    return 1
}

local_server() {
    if ! command -v pg_lsclusters >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed (apt-get install postgresql, as root)"
        say "installing the Debian package postgresql ..."
        "$ROOT/.ci/apt-install.sh" postgresql || die "apt-get install postgresql failed"
    fi
    # the first cluster (version, name, port, status, owner, data directory, log file)
    local version name port status log
    read -r version name port status _ _ log < <(pg_lsclusters -h | head -n 1) || true
    if [ -z "${version:-}" ]; then
        [ "$(id -u)" = 0 ] || die "no PostgreSQL cluster exists (pg_createcluster, as root)"
        version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
        say "creating the cluster $version/main ..."
        pg_createcluster "$version" main >/dev/null || die "pg_createcluster $version main failed"
        read -r version name port status _ _ log < <(pg_lsclusters -h | head -n 1)
    fi
    if [ "$status" != online ]; then
        [ "$(id -u)" = 0 ] || die "the PostgreSQL cluster $version/$name is $status (pg_ctlcluster $version $name start, as root)"
        say "starting the PostgreSQL cluster $version/$name (port $port) ..."
        if ! pg_ctlcluster "$version" "$name" start; then
            # another process may have started it meanwhile
            pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n' | grep -q online || {
                [ -f "$log" ] && tail -n 20 "$log" >&2
                die "pg_ctlcluster $version $name start failed (log: $log)"
            }
        fi
    fi
    local attempt
    for attempt in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p "$port" && break
        [ "$attempt" = 30 ] && die "the PostgreSQL cluster $version/$name does not answer on 127.0.0.1:$port"
        sleep 1
    done

    local password
    if [ "$(id -u)" = 0 ]; then
        # one password per server, kept beside its data: every clone on this machine uses it,
        # so a second clone's `make test` does not change the password under the first one's
        local secret="/var/lib/postgresql/$version-$name.cs_pipeline.password"
        if [ ! -s "$secret" ]; then
            (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$secret.tmp" && mv "$secret.tmp" "$secret")
        fi
        password="$(cat "$secret")"
    elif [ -f "$ENV_FILE" ]; then
        password="$(sed -n 's/^DAGSTER_PG_PASSWORD=//p' "$ENV_FILE")"
    fi
    if [ "$(id -u)" = 0 ]; then
        # the password is hexadecimal: nothing to quote; it travels on stdin only
        as_superuser "$port" >/dev/null <<SQL || die "creating the role $ROLE and the database $DB failed"
SELECT 'CREATE ROLE $ROLE' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') \gexec
ALTER ROLE $ROLE WITH LOGIN CREATEDB PASSWORD '$password';
SELECT 'CREATE DATABASE $DB OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB') \gexec
SQL
    elif [ ! -f "$ENV_FILE" ]; then
        die "no $ENV_FILE: run .ci/postgres.sh once as root to create the role and the database"
    fi
    (
        umask 077
        printf '%s\n' "# written by .ci/postgres.sh: the local PostgreSQL of the production instance" \
            "DAGSTER_PG_HOST=127.0.0.1" "DAGSTER_PG_PORT=$port" "DAGSTER_PG_USERNAME=$ROLE" \
            "DAGSTER_PG_PASSWORD=$password" "DAGSTER_PG_DB=$DB" >"$ENV_FILE.tmp"
        mv "$ENV_FILE.tmp" "$ENV_FILE"
    )
    export DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT="$port" DAGSTER_PG_USERNAME="$ROLE" \
        DAGSTER_PG_PASSWORD="$password" DAGSTER_PG_DB="$DB"
}

if [ -n "${DAGSTER_PG_HOST:-}" ] && [ -n "${DAGSTER_PG_PORT:-}" ] && [ -n "${DAGSTER_PG_USERNAME:-}" ] \
    && [ -n "${DAGSTER_PG_PASSWORD:-}" ] && [ -n "${DAGSTER_PG_DB:-}" ]; then
    say "using the server of DAGSTER_PG_*: $DAGSTER_PG_USERNAME@$DAGSTER_PG_HOST:$DAGSTER_PG_PORT/$DAGSTER_PG_DB"
    export DAGSTER_PG_HOST DAGSTER_PG_PORT DAGSTER_PG_USERNAME DAGSTER_PG_PASSWORD DAGSTER_PG_DB
else
    local_server
fi
if command -v psql >/dev/null; then
    check_login || die "cannot log in as $DAGSTER_PG_USERNAME to $DAGSTER_PG_HOST:$DAGSTER_PG_PORT/$DAGSTER_PG_DB"
fi
say "PostgreSQL ready: $DAGSTER_PG_USERNAME@$DAGSTER_PG_HOST:$DAGSTER_PG_PORT/$DAGSTER_PG_DB (DAGSTER_PG_* exported)"

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
