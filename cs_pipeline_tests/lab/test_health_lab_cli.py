"""The health lab end to end on a small demo tenant: `cs-pipeline demo` ends with the backtest,
`cs-pipeline backtest` writes the tables (published too) and the report through a run of the
lab job recorded in the Dagster instance, and the report draws its charts in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from cs_pipeline.lab.report import REPORT_CHARTS
from cs_pipeline_tests.pipeline.test_webserver import CHROMIUMS, read_png
from cs_pipeline_tests.support import DEMO, processes
from cs_pipeline_tests.support.commands import COMMAND_TIMEOUT
from cs_pipeline_tests.support.warehouse import read_only, rows

DAYS = 6


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """The demo tenant over DAYS days (its backtest's horizon DAYS // 2), then `cs-pipeline backtest
    --horizon 2`; returns the tenant's folder and what the two commands printed."""
    root = tmp_path_factory.mktemp("lab_demo")
    shutil.copy(DEMO / "cs_pipeline.yaml", root)
    shutil.copytree(DEMO / "sql", root / "sql")
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home")}
    printed = []
    for command in (["demo", "--days", str(DAYS)], ["backtest", "--horizon", "2"]):
        done = processes.run(
            [sys.executable, "-m", "cs_pipeline.cli", "--config", str(root / "cs_pipeline.yaml"), *command],
            timeout=COMMAND_TIMEOUT,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        printed.append(done.stdout)
    return root, "\n".join(printed)


@pytest.mark.e2e
def test_the_demo_and_the_backtest_command_write_the_tables_the_report_and_a_run(demo, monkeypatch):
    root, printed = demo
    warehouse = root / "warehouse.duckdb"
    [(first, last)] = rows(warehouse, "SELECT min(date), max(date) FROM account_health")
    reports = [root / "reports" / f"backtest_{first}_{last}_h{h}.html" for h in (DAYS // 2, 2)]
    for horizon, report in zip((DAYS // 2, 2), reports, strict=True):
        assert f"Backtest {first} to {last}, horizon {horizon} days" in printed
        assert f"Report: {report}" in printed
        assert report.stat().st_size > 1_000_000  # plotly.js inlined
    assert re.search(r"^  \*: \d+ scored observable days, \d+ positive; lift Poor", printed, re.M)
    # every configured profile and '*' x 3 labels, for each horizon; every rule of every profile
    profiles = rows(warehouse, "SELECT count(*) FROM (SELECT DISTINCT profile FROM health_backtest)")[0][0]
    assert profiles == 5  # onboarding, high_touch, digital, default, *
    assert rows(warehouse, "SELECT horizon, count(*) FROM health_backtest GROUP BY ALL ORDER BY ALL") == [
        (2, 15),
        (DAYS // 2, 15),
    ]
    # onboarding 2 rules, high_touch 6, digital 3 metrics, default 2
    assert rows(warehouse, "SELECT horizon, count(*) FROM health_backtest_rules GROUP BY ALL ORDER BY ALL") == [
        (2, 13),
        (DAYS // 2, 13),
    ]
    with read_only(root / "published" / "analytics.duckdb") as con:
        for table in ("health_backtest", "health_backtest_rules", "health_backtest_churns"):
            published = con.execute(f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL").fetchall()
            assert published == rows(warehouse, f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL"), table
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))  # the instance's storage says where it is by it
    instance = dg.DagsterInstance.from_config(str(root / "dagster_home"))
    event = instance.get_latest_materialization_event(dg.AssetKey("health_backtest"))
    metadata = event.asset_materialization.metadata
    assert metadata["horizon"].value == 2 and metadata["report"].value == str(reports[1])
    assert "| profile | scored observable days |" in metadata["summary"].value
    run = instance.get_run_by_id(event.run_id)
    assert run.job_name == "health_lab" and run.tags["cs_pipeline/config_sha256"]


def _chromium() -> str:
    for name in CHROMIUMS:
        if path := shutil.which(name):
            return path
    pytest.fail("no Chromium to render the report with: apt-get install chromium (`make test` does, as root)")


# Added to a copy of the report: records script errors and console.error calls, and once the
# page has loaded writes what it found into the DOM, which --dump-dom prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(' ')); __consoleError(...args); };
window.addEventListener('load', () => setTimeout(() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const drawn = plots.filter(plot => plot.querySelectorAll('.main-svg .trace').length > 0).length;
  document.body.setAttribute('data-probe', JSON.stringify({plots: plots.length, drawn, errors: window.__errors}));
}, 2000));
</script>"""


@pytest.mark.e2e
@pytest.mark.ui
def test_the_report_draws_its_charts_offline_in_chromium(demo, tmp_path):
    root, _ = demo
    [report] = sorted((root / "reports").glob("backtest_*_h2.html"))
    page = report.read_text()
    assert not re.search(r"""<(script|link)[^>]+(src|href)=["']?(https?:)?//""", page)  # nothing fetched
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1200,3600", "--virtual-time-budget=20000",
    ]  # fmt: skip
    dom = processes.run(
        [_chromium(), *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probed.as_uri()], timeout=120
    )
    found = re.search(r"data-probe=\"([^\"]*)\"", dom.stdout)
    assert found, f"the probe did not run:\n{dom.stderr[-2000:]}"
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe == {"plots": REPORT_CHARTS, "drawn": REPORT_CHARTS, "errors": []}
    screenshot = tmp_path / "report.png"
    processes.run(
        [
            _chromium(),
            *flags,
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        timeout=120,
    )
    pixels = read_png(screenshot)[..., :3].reshape(-1, 3)
    # not a blank page: the label colours of the charts are there
    for colour in ((0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)):
        assert (np.abs(pixels.astype(int) - colour).sum(axis=1) < 30).sum() > 500, colour
