#!/usr/bin/env bash
# Makes docs/health-lab-report.png: the demo tenant in a throwaway folder and embedded instance
# (its demo ends with the backtest and writes the report), and headless Chromium on the report.
#   Usage: docs/report-screenshot.sh [DAYS]   (from a clone with .venv; default 60 days)
set -euo pipefail
cd "$(dirname "$0")/.."
days="${1:-60}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp demo/cs_pipeline.yaml "$work/" && cp -r demo/sql "$work/"
export DAGSTER_HOME="$work/home" CS_PIPELINE_CONFIG="$work/cs_pipeline.yaml"
.venv/bin/cs-pipeline demo --days "$days" >"$work/demo.log"
report="$(sed -n 's/^Report: //p' "$work/demo.log" | tail -1)"
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$work/chromium" --window-size=1200,3000 \
    --virtual-time-budget=15000 --screenshot=docs/health-lab-report.png "file://$report" 2>/dev/null
echo "docs/health-lab-report.png written from $report"
