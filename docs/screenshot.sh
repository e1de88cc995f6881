#!/usr/bin/env bash
# Makes docs/asset-graph.png: the demo tenant (a week of it) in a throwaway folder and
# embedded instance, `dagster dev` on it, and headless Chromium on the global asset lineage
# with every group expanded.   Usage: docs/screenshot.sh [DAYS]   (from a clone with .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
days="${1:-7}"
work="$(mktemp -d)"
port=3917
cp demo/cs_pipeline.yaml "$work/" && cp -r demo/sql "$work/"
mkdir -p "$work/home"
.venv/bin/python -c "from cs_pipeline.cli import EMBEDDED_INSTANCE_YAML as y; print(y + 'nux:\n  enabled: false')" \
    >"$work/home/dagster.yaml"
export DAGSTER_HOME="$work/home" CS_PIPELINE_CONFIG="$work/cs_pipeline.yaml"
.venv/bin/cs-pipeline demo --days "$days" >"$work/demo.log"
setsid .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$port" >"$work/dev.log" 2>&1 &
dev=$!
trap 'kill -TERM -- -$dev 2>/dev/null; sleep 5; kill -KILL -- -$dev 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/server_info" >/dev/null && break; sleep 1; done
sleep 5  # the code location loads after the webserver answers
groups="$(.venv/bin/python -c "
from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from urllib.parse import quote
defs = build_definitions(load_config())
names = sorted({spec.group_name for spec in defs.resolve_all_asset_specs()})
print(quote(','.join('global@global:' + name for name in names)))")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$work/chromium" --window-size=2000,1500 \
    --virtual-time-budget=15000 --screenshot=docs/asset-graph.png \
    "http://127.0.0.1:$port/asset-groups?expanded=$groups" 2>/dev/null
echo "docs/asset-graph.png written"
