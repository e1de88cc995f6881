"""The issue-14 benchmarks at a tiny scale: each script runs to its end and prints its tables,
and the yardstick (bench/yardstick.py) agrees with the pipeline on every metric, roll-up and
health row of the timed day — the proof that its ratio compares the same work."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import duckdb
import pytest

from cs_pipeline_tests.support.processes import run

BENCH = Path(__file__).resolve().parents[2] / "bench"
TINY = ["--events-per-day", "2000", "--repeats", "1"]
TIMEOUT = 600  # a shared machine is slow; a hang still fails


def _bench(script: str, *arguments: str) -> str:
    result = run([sys.executable, str(BENCH / script), *arguments], timeout=TIMEOUT, cwd=BENCH.parent)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.e2e
def test_shapes_bench_times_both_and_the_yardstick_agrees(tmp_path: Path) -> None:
    # issue-14 (5 profiles, 40 actions a module) and wide (100 modules: the action limit rejects)
    output = _bench(
        "shapes.py", "--shapes", "issue-14", "wide", "--accounts", "200", "--days", "3", *TINY,
        "--workdir", str(tmp_path),
    )  # fmt: skip
    assert output.count("yardstick and pipeline agree on 2025-11-27") == 2  # else shapes.py exits 1
    rows = [line for line in output.splitlines() if line.startswith(("| issue-14 |", "| wide |"))]
    assert [row.split(" | ")[1:4] for row in rows] == [["1-20", "12 x 40", "5"], ["10-20", "100 x 8", "4"]]
    assert "worst ratio: " in output

    # the check is no formality: a changed value, a missing row and a changed label are named
    site = tmp_path / "wide" / "daily"
    tampered = tmp_path / "tampered.duckdb"
    shutil.copy(site / "yardstick.duckdb", tampered)
    with duckdb.connect(str(tampered)) as con:
        con.execute("UPDATE account_metrics SET key_action_30d = key_action_30d + 1 WHERE account_id = "
                    "(SELECT min(account_id) FROM account_metrics WHERE date = '2025-11-27')")  # fmt: skip
        con.execute("DELETE FROM account_rollups WHERE account_id = (SELECT min(account_id) FROM account_rollups)")
        con.execute("UPDATE account_health SET reasons = [] WHERE date = '2025-11-27' AND health = 'Poor'")
    check = run(
        [sys.executable, str(BENCH / "yardstick.py"), "--config", str(site / "cs_pipeline.yaml"), "--db", str(tampered),
         "--day", "2025-11-27", "--check", str(site / "warehouse.duckdb")],
        timeout=TIMEOUT,
    )  # fmt: skip
    assert check.returncode == 1
    assert "account_metrics.key_action_30d: 1 of " in check.stdout
    assert "account_rollups: 0 rows only in the yardstick, 1 only in the pipeline" in check.stdout
    assert "account_health.reasons: " in check.stdout
    assert "account_health.health:" not in check.stdout

    # the profiler runs the day again on a copy of the site: every asset and check timed, the site untouched
    before = (site / "warehouse.duckdb").stat().st_mtime_ns
    profile = _bench("profile_day.py", "--site", str(site), "--date", "2025-11-27", "--over", "0")
    assert "whole command in process" in profile
    assert all(f"  {work}\n" in profile for work in ("usage_events", "account_metrics + account_rollups", "users"))
    assert "check usage_events_schema" in profile and "INSERT INTO usage_events" in profile
    assert (site / "warehouse.duckdb").stat().st_mtime_ns == before
    assert sorted(p.name for p in site.parent.iterdir() if p.name.startswith("profile-day-")) == []


@pytest.mark.e2e
def test_growth_bench_prints_its_tables(tmp_path: Path) -> None:
    output = _bench(
        "growth.py", "--events-per-day", "2000", "--accounts", "200", "--base-events", "2000",
        "--base-accounts", "200", "--days", "2", "--history-days", "2", "9", "--repeats", "1",
        "--with-yardstick", "--workdir", str(tmp_path),
    )  # fmt: skip
    [size_row] = [line for line in output.splitlines() if line.startswith("| 0.002 M | 200 |")]
    assert len(size_row.split("|")) == 10  # with the yardstick's column
    assert "| day 2 (2025-11-20) |" in output and "| day 9 (2025-11-27) |" in output
    assert "day 9 / day 2: " in output and "the yardstick's: " in output
    # day 2 stores the CRM change of the last day: its site has the last export dated on day 2
    exports = tmp_path / "history-200-2000" / "loaded-2" / "crm"
    assert sorted(p.name for p in exports.iterdir()) == ["date=2025-11-19", "date=2025-11-20"]


@pytest.mark.e2e
def test_event_key_probe_bench_finds_the_same_rows_both_ways(tmp_path: Path) -> None:
    output = _bench(
        "event_key_probe.py", "--days", "2", "3", "--events-per-day", "20000", "--rounds", "2",
        "--workdir", str(tmp_path),
    )  # fmt: skip
    rows = [line.split(" | ") for line in output.splitlines() if line.startswith(("| 2 days |", "| 3 days |"))]
    # the previous day's 1.5 % (300 of 20,000 ids) in the delivery: found, the same rows, by both probes
    assert [row[1] for row in rows] == ["300", "300"]
    assert list(tmp_path.iterdir()) == []  # the scratch file is gone
