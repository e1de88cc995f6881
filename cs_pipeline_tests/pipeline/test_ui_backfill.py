"""A backfill launched from the UI, for real: bench/ui_backfill.py starts `dagster dev` on the
demo tenant, launches a backfill of every asset over 3 days through the UI's GraphQL API
(launchPartitionBackfill), waits for it and checks that it and its runs succeeded and every
partition is materialised. The script runs in a session of its own, stopped with everything it
started (dagster dev, its daemon, code server and run workers) when the test ends, passed or failed."""

from __future__ import annotations

import json
import sys

import pytest

from cs_pipeline_tests.support import REPO, processes

pytestmark = [pytest.mark.e2e, pytest.mark.ui]


def test_a_three_day_backfill_of_every_asset_launched_through_the_ui_succeeds(tmp_path):
    finished = processes.run(
        [sys.executable, str(REPO / "bench" / "ui_backfill.py"), "--days", "3", "--timeout", "480",
         "--workdir", str(tmp_path / "ui_backfill")],
        timeout=600,
    )  # fmt: skip

    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    assert (result["days"], result["accounts"]) == (3, 60)
    # the daily assets in one run of the 3 days; account_health split by Dagster into one run a
    # day (3 days, fewer than the 4 profiles); subaccount_health in one or a few runs of days
    assert 5 <= result["runs"] <= 7, result
    print(f"UI backfill of 3 days: {result['elapsed_seconds']} s, {result['runs']} runs")
