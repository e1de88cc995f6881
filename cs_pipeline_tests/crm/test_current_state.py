"""The current-state tables refreshed from what changed: `accounts` rewrites only the accounts
whose row came, went or changed, and every row then carries the run's run_id, exactly as the
whole table rewritten from the open versions (the code before) gives; `users` finds the contacts
whose name changed, to or from null included (crm/sql/refresh_current_accounts.sql,
crm/sql/refresh_users.sql)."""

from __future__ import annotations

from datetime import date

from cs_pipeline.crm.assets import refresh_users, resolve_account_snapshot, store_crm_snapshot
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.sources import CrmFilesSource
from cs_pipeline.usage.ingest import ingest_delivery
from cs_pipeline_tests.support.tenant import (
    APPENDIX_ACCOUNTS,
    APPENDIX_ASSETS,
    APPENDIX_CONTACTS,
    write_crm,
    write_events_csv,
)

# accounts as the whole-table rewrite made it: the open versions, then the IDs seen only in events
REWRITTEN = """
SELECT * EXCLUDE (valid_from, valid_to, occurrence, run_id), $run_id FROM account_versions WHERE valid_to IS NULL
UNION ALL
SELECT account_id, NULL, NULL, account_id, 0, [account_id], 'unknown', NULL, NULL, unknown_status_group(),
    NULL, NULL, NULL, NULL, NULL, $run_id
FROM (SELECT DISTINCT account_id FROM usage_account_days)
WHERE account_id NOT IN (SELECT account_id FROM account_versions WHERE valid_to IS NULL)
ORDER BY ALL
"""


def test_accounts_rewrites_changed_rows_and_gives_every_row_the_run_id(appendix_tenant):
    root, config, con = appendix_tenant

    def day(on: str, accounts: list[dict], run_id: str) -> list[tuple]:
        write_crm(root / "crm", accounts, APPENDIX_ASSETS, APPENDIX_CONTACTS)
        frames = extract_snapshot(CrmFilesSource(files_dir=str(config.crm.files_dir)), config)
        store_crm_snapshot(con, date.fromisoformat(on), frames, "crm", made_from=f"export of {on}")
        resolve_account_snapshot(con, date.fromisoformat(on), config, run_id, code="test")
        stored = con.execute("SELECT * FROM accounts ORDER BY ALL").fetchall()
        assert stored == con.execute(REWRITTEN, {"run_id": run_id}).fetchall()
        assert {row[-1] for row in stored} == {run_id}
        return [(row[0], row[6], row[8]) for row in stored]  # account_id, account_type, status

    assert day("2025-11-20", APPENDIX_ACCOUNTS, "a1") == [
        ("ABC", "account", "Pro"), ("ABC_Widget1", "product", "Pro"), ("ABC_Widget2", "product", "Trial"),
        ("XYZ", "account", "Enterprise"), ("XYZ_Widget1", "product", "Enterprise"),
    ]  # fmt: skip
    write_events_csv(root / "landing", "2025-11-20", "a.csv", [
        {"event_id": "e1", "ts": "2025-11-20T10:00:00Z", "account_id": "NEW", "user_id": "u", "action": "Login"},
    ])  # fmt: skip
    ingest_delivery(
        con, landing=root / "landing", partition_date=date(2025, 11, 20), module_limit=100, action_limit=500,
        run_id="usage",
    )  # fmt: skip
    # ABC cancelled (its products follow), an ID seen only in events
    cancelled = [APPENDIX_ACCOUNTS[0], {**APPENDIX_ACCOUNTS[1], "Status__c": "Cancelled"}]
    assert day("2025-11-21", cancelled, "a2") == [
        ("ABC", "account", "Cancelled"), ("ABC_Widget1", "product", "Cancelled"),
        ("ABC_Widget2", "product", "Trial"), ("NEW", "unknown", None),
        ("XYZ", "account", "Enterprise"), ("XYZ_Widget1", "product", "Enterprise"),
    ]  # fmt: skip
    # nothing changed: every row is kept and takes the run's run_id
    assert day("2025-11-22", cancelled, "a3")[3] == ("NEW", "unknown", None)
    # the unknown ID joins the CRM and ABC leaves it, with its products (their assets name 001B)
    joined = [APPENDIX_ACCOUNTS[0], {**APPENDIX_ACCOUNTS[1], "Id": "001N", "External_Id__c": "NEW", "Name": "New"}]
    assert day("2025-11-23", joined, "a4") == [
        ("NEW", "account", "Pro"), ("XYZ", "account", "Enterprise"), ("XYZ_Widget1", "product", "Enterprise"),
    ]  # fmt: skip


def test_users_sees_a_contact_name_go_to_null_and_come_back(appendix_tenant):
    root, config, con = appendix_tenant

    def day(on: str, ann: dict, run_id: str) -> tuple[list[tuple], list[tuple]]:
        write_crm(root / "crm", APPENDIX_ACCOUNTS, APPENDIX_ASSETS, [ann, APPENDIX_CONTACTS[1]])
        frames = extract_snapshot(CrmFilesSource(files_dir=str(config.crm.files_dir)), config)
        store_crm_snapshot(con, date.fromisoformat(on), frames, "crm")
        refresh_users(con, run_id)
        return (
            con.execute("SELECT account_id, user_id, name, run_id FROM users").fetchall(),
            con.execute("SELECT * FROM user_contacts").fetchall(),
        )

    ann = APPENDIX_CONTACTS[0]
    assert day("2025-11-20", ann, "u1") == ([("XYZ", "ann@acme.com", "Ann", "u1")], [("XYZ", "ann@acme.com", "Ann")])
    assert day("2025-11-21", {**ann, "Name": " "}, "u2") == (
        [("XYZ", "ann@acme.com", None, "u2")], [("XYZ", "ann@acme.com", None)]
    )  # fmt: skip
    assert day("2025-11-22", {**ann, "Name": " "}, "u3")[0] == [("XYZ", "ann@acme.com", None, "u2")]  # unchanged
    assert day("2025-11-23", ann, "u4")[0] == [("XYZ", "ann@acme.com", "Ann", "u4")]
