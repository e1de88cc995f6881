"""Salesforce extraction (docs/data-model.md#salesforce-extraction) with the unmodified
simple-salesforce client over HTTPS against the local Salesforce-compatible server, loaded with
a generated demo CRM export."""

import csv
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from cs_pipeline import cli
from cs_pipeline.crm.salesforce_extraction import (
    RequestLimitExceeded,
    SalesforceResource,
    SalesforceSourceError,
    sync_object,
)
from cs_pipeline.demo.generator import generate_tenant
from cs_pipeline.warehouse import connect
from cs_pipeline_testing.salesforce_server.local_server import LocalSalesforceServer
from cs_pipeline_tests.support import DEMO
from cs_pipeline_tests.support.warehouse import read_only

ACCOUNT_FIELDS = ["Id", "External_Id__c", "Name", "ParentId", "Status__c", "Licenses__c", "CreatedDate"]
ASSET_FIELDS = ["Id", "AccountId", "Product2.ProductCode", "Product2.Name", "Quantity", "Price", "InstallDate"]
CONTACT_FIELDS = ["Id", "AccountId", "Email", "Name"]


@pytest.fixture(scope="module")
def crm_export(tmp_path_factory) -> Path:
    """The demo generator's CRM export: 60 accounts with hierarchy, asset holdings, contacts."""
    root = tmp_path_factory.mktemp("export")
    return generate_tenant(root, end_date=date(2025, 11, 20), days=1, progress=None).latest_crm_export


@pytest.fixture
def server(crm_export):
    with LocalSalesforceServer() as server:
        server.store.load_csv_exports(crm_export)
        yield server


@pytest.fixture
def warehouse(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    yield con
    con.close()


def resource(server: LocalSalesforceServer, **settings) -> SalesforceResource:
    """Username/password login through the proxy, as a production setup behind one would."""
    return SalesforceResource(
        username=server.username,
        password=server.password,
        security_token=server.security_token,
        ca_bundle=server.ca_path,
        proxy=server.proxy_url,
        backoff_seconds=0.01,
        bulk_poll_seconds=0,
        **settings,
    )


def sync(sf: SalesforceResource, con, object_name="Account", fields=ACCOUNT_FIELDS, full_refresh=False):
    return sync_object(
        sf.open(),
        con,
        object_name=object_name,
        fields=fields,
        optional_fields=["SystemModstamp"],
        overlap_minutes=sf.overlap_minutes,
        full_refresh=full_refresh,
        run_id="test",
    )


def mirror(con, table="salesforce_account") -> dict[str, tuple]:
    rows = con.execute(f"SELECT * EXCLUDE (run_id) FROM {table}").fetchall()
    return {row[0]: row for row in rows}


def bookmark(con, object_name="Account"):
    return con.execute("SELECT bookmark, fields FROM salesforce_sync WHERE object = ?", [object_name]).fetchall()


def live_ids(server, object_name) -> set[str]:
    return {record["Id"] for record in server.store.records(object_name)}


@pytest.mark.e2e
def test_full_load_equals_the_csv_path(tmp_path, monkeypatch, server, crm_export):
    """The demo export through the CSV path and through Salesforce gives the same accounts,
    hierarchy issues and users, row for row."""
    config_text = (DEMO / "cs_pipeline.yaml").read_text()
    results = {}
    for source in ("files", "salesforce"):
        root = tmp_path / source
        shutil.copytree(crm_export, root / "crm")
        shutil.copytree(DEMO / "sql", root / "sql")
        (root / "landing" / "usage").mkdir(parents=True)
        config = root / "cs_pipeline.yaml"
        config.write_text(config_text.replace("source: files", f"source: {source}") + 'start_date: "2025-11-01"\n')
        monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        for name, value in {
            "SF_USERNAME": server.username,
            "SF_PASSWORD": server.password,
            "SF_SECURITY_TOKEN": server.security_token,
            "SF_CA_BUNDLE": server.ca_path,
            "SF_PROXY": server.proxy_url,
        }.items():
            monkeypatch.setenv(name, value)
        assert cli.main(["--config", str(config), "materialize", "--date", "2025-11-20"]) == 0
        with read_only(root) as con:
            results[source] = {
                table: con.execute(f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY ALL").fetchall()
                for table in ("accounts", "hierarchy_issues", "users")
            }
    assert len(results["files"]["accounts"]) > 60  # the accounts and their product holdings
    assert results["salesforce"] == results["files"]


def test_incremental_sync_changes_exactly_the_changed_rows(server, warehouse):
    sf = resource(server)
    first = sync(sf, warehouse)
    assert (first.mode, first.api, first.rows) == ("full", "rest", 60)
    before = mirror(warehouse)
    assert set(before) == live_ids(server, "Account")
    [(first_bookmark, fields)] = bookmark(warehouse)
    assert fields == [*ACCOUNT_FIELDS[:1], "SystemModstamp", "IsDeleted", *ACCOUNT_FIELDS[1:]]

    updated, deleted = sorted(before)[:2]
    server.store.update("Account", updated, {"Name": "Renamed Ltd"})
    server.store.delete("Account", [deleted])
    [inserted] = server.store.insert("Account", [{"External_Id__c": "NEW-1", "Name": "Newco", "Licenses__c": 5}])
    server.request_log.clear()

    second = sync(sf, warehouse)
    [soql] = [q for q in server.request_log.soql() if "FROM Account" in q]
    since = (first_bookmark - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert soql.endswith(f"FROM Account WHERE SystemModstamp >= {since}")
    assert (second.mode, second.deleted) == ("incremental", 1)
    after = mirror(warehouse)
    assert set(after) == set(before) - {deleted} | {inserted}
    changed = {key for key in set(after) & set(before) if after[key] != before[key]}
    assert changed == {updated}
    # columns: Id, SystemModstamp, IsDeleted, then the mapped fields in order
    assert after[updated][4] == "Renamed Ltd"
    assert after[inserted][3:5] == ("NEW-1", "Newco") and after[inserted][7] == "5.0"
    [(second_bookmark, _fields)] = bookmark(warehouse)
    assert second_bookmark > first_bookmark

    # nothing changed since: the overlap re-reads a few records, the mirror stays as it is
    third = sync(sf, warehouse)
    assert third.deleted == 0 and mirror(warehouse) == after


def test_rest_pages_and_bulk_locator_pages_return_every_record_once(server, warehouse, tmp_path):
    server.config.query_page_size = 7
    rest = sync(resource(server), warehouse, "Contact", CONTACT_FIELDS, full_refresh=True)
    contacts = len(live_ids(server, "Contact"))
    assert (rest.api, rest.pages, rest.rows) == ("rest", -(-contacts // 7), contacts)
    by_rest = mirror(warehouse, "salesforce_contact")

    server.config.bulk_max_records = 100
    bulk = sync(resource(server, bulk_threshold=50), warehouse, "Contact", CONTACT_FIELDS, full_refresh=True)
    assert (bulk.api, bulk.pages, bulk.rows) == ("bulk", -(-contacts // 100), contacts)
    assert server.request_log.count("/jobs/query/") >= bulk.pages
    # the same text whichever API delivered it (datetimes, blanks as null)
    assert mirror(warehouse, "salesforce_contact") == by_rest


def test_relationship_fields_and_types_through_both_apis(server, warehouse, crm_export):
    rest = sync(resource(server), warehouse, "Asset", ASSET_FIELDS)
    by_rest = mirror(warehouse, "salesforce_asset")
    bulk = sync(resource(server, bulk_threshold=1), warehouse, "Asset", ASSET_FIELDS, full_refresh=True)
    assert (rest.api, bulk.api) == ("rest", "bulk")
    assert mirror(warehouse, "salesforce_asset") == by_rest
    # every Asset as the CSV export has it: the same text (datetimes with +0000, decimals)
    with (crm_export / "Asset.csv").open() as handle:
        exported = {
            row["Id"]: (row["Id"], row["SystemModstamp"], row["IsDeleted"], *(row[f] or None for f in ASSET_FIELDS[1:]))
            for row in csv.DictReader(handle)
        }
    assert by_rest == exported


def test_transient_failures_are_retried(server, warehouse):
    server.faults.inject("server_error", times=2, path_contains="/query", status=503)
    server.faults.inject("rate_limited", times=1, path_contains="/query")
    server.faults.inject("connection_reset", times=1, path_contains="/describe")
    result = sync(resource(server), warehouse)
    assert result.rows == 60
    statuses = [entry.status for entry in server.request_log.entries("/queryAll")]
    assert statuses == [503, 503, 429, 200]
    assert [e.status for e in server.request_log.entries("/sobjects/Account/describe")] == [None, 200]


def test_request_limit_stops_the_sync_and_keeps_the_bookmark(server, warehouse):
    sf = resource(server)
    sync(sf, warehouse)
    before, kept = mirror(warehouse), bookmark(warehouse)
    server.store.update("Account", sorted(before)[0], {"Name": "Changed"})
    server.faults.inject("request_limit_exceeded", times=1, path_contains="/queryAll")
    with pytest.raises(RequestLimitExceeded, match="REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded"):
        sync(sf, warehouse)
    assert server.request_log.count("/queryAll") == 2  # not retried
    assert mirror(warehouse) == before and bookmark(warehouse) == kept
    assert sync(sf, warehouse).upserted >= 1  # the next run picks the change up


def test_expired_session_is_reestablished_once(server, warehouse):
    sf = resource(server)
    connection = sf.open()
    logins = server.request_log.count("/services/Soap/u/")
    server.faults.inject("expire_sessions", times=1, path_contains="/describe")
    result = sync_object(
        connection, warehouse, object_name="Account", fields=ACCOUNT_FIELDS, optional_fields=[],
        overlap_minutes=10, full_refresh=False, run_id="test",
    )  # fmt: skip
    assert result.rows == 60
    assert server.request_log.count("/services/Soap/u/") == logins + 1


def test_expired_session_id_is_a_clear_error(server, warehouse):
    sf = SalesforceResource(
        instance_url=server.instance_url, session_id=server.new_session_id(), ca_bundle=server.ca_path
    )
    connection = sf.open()
    server.sessions.expire_all()
    with pytest.raises(SalesforceSourceError, match="session expired \\(set a fresh SF_SESSION_ID\\)"):
        connection.field_types("Account", ["Id"], [])


def test_failed_bulk_job_reports_salesforces_message(server, warehouse):
    server.faults.inject("bulk_job_failed", message="InvalidBatch : Failed to process query")
    with pytest.raises(SalesforceSourceError, match="Bulk 2.0 queryAll Account: .*InvalidBatch : Failed to process"):
        sync(resource(server, bulk_threshold=1), warehouse)
    assert bookmark(warehouse) == []


def test_a_mapped_field_that_does_not_exist_is_named(server, warehouse):
    with pytest.raises(SalesforceSourceError, match="Salesforce Asset has no field Product2.Nope, Missing__c"):
        sync(resource(server), warehouse, "Asset", [*ASSET_FIELDS, "Product2.Nope", "Missing__c"])


def test_credentials_never_reach_errors(server):
    wrong = SalesforceResource(
        username=server.username, password="Wrong-Pass-123", security_token="Tok-456",
        ca_bundle=server.ca_path, proxy=server.proxy_url,
    )  # fmt: skip
    with pytest.raises(SalesforceSourceError) as failure:
        wrong.open()
    assert "INVALID_LOGIN" in str(failure.value)
    assert server.request_log.count("/services/Soap/u/") == 1  # a wrong password is not tried again
    assert "Wrong-Pass-123" not in str(failure.value) and "Tok-456" not in str(failure.value)
    with pytest.raises(SalesforceSourceError, match="no Salesforce credentials: set SF_INSTANCE_URL"):
        SalesforceResource().open()


@pytest.mark.e2e
def test_demo_through_the_local_salesforce_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN", "SF_CA_BUNDLE", "SF_PROXY"):
        monkeypatch.setenv(name, "")  # restored after the test: the demo points them at its server
    shutil.copy(DEMO / "cs_pipeline.yaml", tmp_path)
    shutil.copytree(DEMO / "sql", tmp_path / "sql")
    assert cli.main(["--config", str(tmp_path / "cs_pipeline.yaml"), "demo", "--days", "2", "--crm", "salesforce"]) == 0
    assert "local Salesforce at https://127.0.0.1:" in capsys.readouterr().out
    with read_only(tmp_path) as con:
        [(mirrored, accounts, modes)] = con.execute(
            "SELECT (SELECT count(*) FROM salesforce_account), (SELECT count(*) FROM accounts WHERE account_type = "
            "'account'), (SELECT list(DISTINCT mode ORDER BY mode) FROM salesforce_sync)"
        ).fetchall()
    # one daily run for the two days (a range run syncs once): the full load; every mirrored
    # account is in `accounts` (the incremental sync: test_crash_safety_salesforce.py)
    assert (mirrored, accounts, modes) == (60, 60, ["full"])
