#!/usr/bin/env bash
# Chromium for the screenshot of the Dagster UI (cs_pipeline_tests/pipeline/test_webserver.py), made
# ready by `make test` before pytest, as .ci/postgres.sh makes PostgreSQL ready: as root, the
# Debian package `chromium` is installed if no Chromium is on PATH; otherwise a missing
# Chromium fails here, saying what to install.
set -euo pipefail

# the names test_webserver.py looks for
for name in chromium chromium-browser google-chrome; do
    command -v "$name" >/dev/null && exit 0
done
if [ "$(id -u)" != 0 ]; then
    echo "chromium.sh: FAILED: the UI test needs Chromium: apt-get install chromium (as root), or run make test as root" >&2
    exit 1
fi
echo "chromium.sh: installing the Debian package chromium ..." >&2
"$(dirname "$0")/apt-install.sh" chromium
command -v chromium >/dev/null || { echo "chromium.sh: FAILED: no chromium on PATH after apt-get install chromium" >&2; exit 1; }
