"""`users` kept up to date from what changed (crm/sql/refresh_users.sql) equals `users` rebuilt
from all history (the newest snapshot's contacts and every user's event days) after each kind
of change: new deliveries, late events, days delivered out of order, an earlier delivery
taking an event over, a re-delivery that drops events, contacts changed in a newer or an older
snapshot, and a retention purge; and a refresh with nothing new writes nothing."""

from __future__ import annotations

from datetime import date

from cs_pipeline.crm.assets import refresh_users, resolve_account_snapshot, store_crm_snapshot
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.sources import CrmFilesSource
from cs_pipeline.lifecycle.retention import purge_inactive_free_accounts
from cs_pipeline.metrics.account_metrics import compute_account_metrics
from cs_pipeline.usage.ingest import ingest_delivery
from cs_pipeline_tests.support.tenant import (
    APPENDIX_ACCOUNTS,
    APPENDIX_ASSETS,
    APPENDIX_CONTACTS,
    write_crm,
    write_events_csv,
)

# every user from scratch: the newest snapshot's contacts and every user's event days
REBUILT = """
WITH contacts AS (
    SELECT a.account_id, CASE WHEN contains(c.user_id, '@') THEN lower(c.user_id) ELSE c.user_id END AS user_id,
        c.name, c.system_modstamp, c.salesforce_id
    FROM crm_contact_versions c JOIN crm_account_versions a ON a.salesforce_id = c.account_salesforce_id
    WHERE in_force(c.valid_from, c.valid_to, (SELECT max(snapshot_date) FROM snapshot_dates))
      AND in_force(a.valid_from, a.valid_to, (SELECT max(snapshot_date) FROM snapshot_dates))
),
named AS (
    SELECT account_id, user_id, arg_max(name, (coalesce(system_modstamp, ''), salesforce_id)) AS name
    FROM contacts WHERE user_id IS NOT NULL AND account_id IS NOT NULL GROUP BY ALL
)
SELECT account_id, user_id, name, first_seen, last_seen
FROM named FULL JOIN (
    SELECT account_id, user_id, min(event_date) AS first_seen, max(event_date) AS last_seen
    FROM usage_user_days GROUP BY ALL
) USING (account_id, user_id)
ORDER BY ALL
"""


def event(event_id: str, ts: str, account_id: str, user_id: str) -> dict[str, str]:
    return {"event_id": event_id, "ts": ts, "account_id": account_id, "user_id": user_id, "action": "Login"}


def test_users_refreshed_from_changes_equals_users_rebuilt_from_history(appendix_tenant):
    root, config, con = appendix_tenant
    runs = iter(range(100))

    def snapshot(day: str, contacts: list[dict]) -> None:
        write_crm(root / "crm", APPENDIX_ACCOUNTS, APPENDIX_ASSETS, contacts)
        frames = extract_snapshot(CrmFilesSource(files_dir=str(config.crm.files_dir)), config)
        store_crm_snapshot(con, date.fromisoformat(day), frames, "crm")

    def deliver(day: str, events: list[dict]) -> None:
        write_events_csv(root / "landing", day, "a.csv", events)
        ingest_delivery(
            con, landing=root / "landing", partition_date=date.fromisoformat(day), module_limit=100,
            action_limit=500, run_id="usage",
        )  # fmt: skip

    def users() -> list[tuple]:
        refresh_users(con, f"users-{next(runs)}")
        assert con.execute("SELECT count(*) FROM user_day_changes").fetchall() == [(0,)]
        stored = con.execute("SELECT * EXCLUDE (run_id) FROM users ORDER BY ALL").fetchall()
        assert stored == con.execute(REBUILT).fetchall()
        return [(account, user, name, str(first), str(last)) for account, user, name, first, last in stored]

    snapshot("2025-11-20", APPENDIX_CONTACTS)
    assert users() == [("XYZ", "ann@acme.com", "Ann", "None", "None")]  # a contact, no event yet
    deliver("2025-11-20", [
        event("e1", "2025-11-20T10:00:00Z", "XYZ", "Ann@Acme.com"),
        event("e2", "2025-11-19T10:00:00Z", "ABC_Widget2", "w@acme.com"),  # late
        event("e3", "2025-11-20T11:00:00Z", "XYZ", "bob"),
    ])  # fmt: skip
    assert users() == [
        ("ABC_Widget2", "w@acme.com", None, "2025-11-19", "2025-11-19"),
        ("XYZ", "ann@acme.com", "Ann", "2025-11-20", "2025-11-20"),
        ("XYZ", "bob", None, "2025-11-20", "2025-11-20"),
    ]
    # the 22nd before the 21st; then the 21st brings e5 too (it takes it over) and bob's late 18th
    deliver("2025-11-22", [
        event("e4", "2025-11-22T10:00:00Z", "XYZ", "bob"), event("e5", "2025-11-21T10:00:00Z", "XYZ", "carol"),
    ])  # fmt: skip
    assert users()[2:] == [
        ("XYZ", "bob", None, "2025-11-20", "2025-11-22"), ("XYZ", "carol", None, "2025-11-21", "2025-11-21")
    ]  # fmt: skip
    deliver("2025-11-21", [
        event("e5", "2025-11-21T10:00:00Z", "XYZ", "carol"), event("e6", "2025-11-18T10:00:00Z", "XYZ", "bob"),
    ])  # fmt: skip
    assert users()[2:] == [
        ("XYZ", "bob", None, "2025-11-18", "2025-11-22"), ("XYZ", "carol", None, "2025-11-21", "2025-11-21")
    ]  # fmt: skip
    # the 20th delivered again without Ann's only event: she is a contact without events again
    deliver("2025-11-20", [
        event("e2", "2025-11-19T10:00:00Z", "ABC_Widget2", "w@acme.com"),
        event("e3", "2025-11-20T11:00:00Z", "XYZ", "bob"),
    ])  # fmt: skip
    assert users()[1] == ("XYZ", "ann@acme.com", "Ann", "None", "None")
    # a newer snapshot renames Ann, drops the empty-mail contact, adds Dan to ABC; then an older
    # one (the 21st) with other contacts changes nothing: users shows the newest
    renamed = [{**APPENDIX_CONTACTS[0], "Name": "Ann B."}, {"Id": "003D", "AccountId": "001B", "Email": "dan@acme.com"}]
    snapshot("2025-11-23", renamed)
    snapshot("2025-11-21", [{"Id": "003E", "AccountId": "001A", "Email": "eve@acme.com", "Name": "Eve"}])
    assert users() == [
        ("ABC", "dan@acme.com", None, "None", "None"),
        ("ABC_Widget2", "w@acme.com", None, "2025-11-19", "2025-11-19"),
        ("XYZ", "ann@acme.com", "Ann B.", "None", "None"),
        ("XYZ", "bob", None, "2025-11-18", "2025-11-22"),
        ("XYZ", "carol", None, "2025-11-21", "2025-11-21"),
    ]
    # retention on the 25th: ABC_Widget2 (a Trial product, Free) has had no event for 3 days
    day = date(2025, 11, 25)
    resolve_account_snapshot(con, date(2025, 11, 23), config, "accounts", code="test")
    compute_account_metrics(con, config, as_of=day, run_id="metrics")
    assert purge_inactive_free_accounts(con, as_of=day, inactive_days=3, run_id="retention").rows_purged == 1
    assert [row[:2] for row in users()] == [
        ("ABC", "dan@acme.com"), ("XYZ", "ann@acme.com"), ("XYZ", "bob"), ("XYZ", "carol")
    ]  # fmt: skip

    # nothing new: the refresh writes no row
    before = con.execute("SELECT * FROM users ORDER BY ALL").fetchall()
    users()
    assert con.execute("SELECT * FROM users ORDER BY ALL").fetchall() == before
