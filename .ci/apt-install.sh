#!/usr/bin/env bash
# Installs Debian packages, as root, quietly: what .ci/run, .ci/postgres.sh and .ci/chromium.sh
# need from the machine. Without recommended packages: headless Chromium and the server part
# of PostgreSQL need none of them (Chromium's would add about a hundred, desktop ones).
#
#   .ci/apt-install.sh PACKAGE...
#
# Another apt may be running (two `make test` at once, on a fresh machine): the install waits
# up to 10 minutes for dpkg's lock; `apt-get update` cannot wait for its own lock, so it is
# tried again, up to 20 times 10 s apart.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "apt-install.sh: installing $* needs root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

attempt=1
until apt-get update -qq; do
    [ "$attempt" -lt 20 ] || { echo "apt-install.sh: apt-get update failed $attempt times" >&2; exit 1; }
    echo "apt-install.sh: apt-get update failed (another apt running?), trying again in 10 s" >&2
    attempt=$((attempt + 1))
    sleep 10
done
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "$@" >/dev/null
