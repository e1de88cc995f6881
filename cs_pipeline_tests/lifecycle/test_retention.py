"""Retention (docs/lifecycle.md#retention) through the CLI: an inactive Free account's events are purged and
logged, its metrics of the days before are untouched, and a later backfill of the day its
events came in does not bring them back."""

import dagster as dg
import pytest

from cs_pipeline import cli
from cs_pipeline_tests.support.tenant import CONFIG
from cs_pipeline_tests.support.warehouse import rows as query

pytestmark = pytest.mark.e2e


@pytest.fixture
def tenant_config() -> str:
    """conftest.py's `tenant` with a retention of 3 days for inactive Free accounts."""
    return CONFIG + "retention: {free_inactive_days: 3}\n"


@pytest.fixture
def tenant_deliveries() -> dict[str, list[dict[str, str]]]:
    """The 20th only: two events of ABC_Widget2 (one of them late) and one of XYZ."""
    return {"2025-11-20": [
        # ABC_Widget2 is a Trial product account (group Free), XYZ an Enterprise one (Paying)
        {"event_id": "w1", "ts": "2025-11-20T08:00:00Z", "account_id": "ABC_Widget2", "action": "Login"},
        {"event_id": "w2", "ts": "2025-11-19T23:00:00Z", "account_id": "ABC_Widget2", "action": "Login"},
        {"event_id": "x1", "ts": "2025-11-20T09:00:00Z", "account_id": "XYZ", "action": "Login"},
    ]}  # fmt: skip


def backfill(config, start: str, end: str) -> None:
    assert cli.main(["--config", str(config), "backfill", "--start", start, "--end", end]) == 0


def test_inactive_free_account_is_purged_once_and_not_ingested_again(tenant):
    backfill(tenant, "2025-11-20", "2025-11-22")
    # on the 22nd the last event (20th) is 2 days back: within the 3 days, nothing purged
    assert query(tenant, "SELECT count(*) FROM retention_log") == [(0,)]

    backfill(tenant, "2025-11-23", "2025-11-23")
    # on the 23rd no event in [21st, 23rd]: both of ABC_Widget2's events go; XYZ is Paying
    assert query(tenant, "SELECT account_id, purged_on::VARCHAR, purged_through::VARCHAR, rows FROM retention_log") == [
        ("ABC_Widget2", "2025-11-23", "2025-11-23", 2)
    ]
    assert query(tenant, "SELECT event_id FROM usage_events") == [("x1",)]
    # the metrics of the 23rd were computed before the purge
    assert query(tenant, "SELECT date::VARCHAR, events_30d FROM account_metrics WHERE account_id = 'ABC_Widget2' "
                 "ORDER BY date") == [
        ("2025-11-20", 2), ("2025-11-21", 2), ("2025-11-22", 2), ("2025-11-23", 2)
    ]  # fmt: skip

    backfill(tenant, "2025-11-20", "2025-11-20")  # the delivery holding the purged events, again
    assert query(tenant, "SELECT event_id FROM usage_events") == [("x1",)]
    assert query(tenant, "SELECT count(*) FROM usage_account_days WHERE account_id = 'ABC_Widget2'") == [(0,)]
    ingest = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey("usage_events"))
    metadata = ingest.asset_materialization.metadata
    assert (metadata["purged_by_retention"].value, metadata["duplicates"].value) == (2, 0)
    backfill(tenant, "2025-11-23", "2025-11-23")  # a re-run finds nothing more to purge
    assert query(tenant, "SELECT account_id, rows FROM retention_log") == [("ABC_Widget2", 2)]
