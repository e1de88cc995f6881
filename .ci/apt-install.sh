#!/usr/bin/env bash
# Installs Debian packages, as root, quietly: what .ci/run, .ci/postgres.sh and .ci/chromium.sh
# need from the machine.
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
    attempt=$((attempt + 1))
    sleep 10
done
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "$@" >/dev/null
