"""The local Salesforce server, driven by the real, unmodified simple-salesforce client over
HTTPS (SOAP login through the CONNECT proxy, REST query/queryAll, describe, Bulk API 2.0),
its fault switches, the record store and CSV loader, and the SOQL subset on its own."""

from __future__ import annotations

import csv
import io
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, closing
from datetime import date, datetime, timedelta, timezone
from http.client import HTTPSConnection
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from urllib3.util.retry import Retry

from cs_pipeline.demo.generator import generate_tenant
from cs_pipeline_testing.salesforce_server.endpoints import ApiConfig
from cs_pipeline_testing.salesforce_server.local_server import LocalSalesforceServer
from cs_pipeline_testing.salesforce_server.schema import DEFAULT_SCHEMAS, FieldSpec, FieldType, ObjectSchema
from cs_pipeline_testing.salesforce_server.soql import (
    INVALID_FIELD,
    INVALID_TYPE,
    MALFORMED_QUERY,
    SoqlError,
    bind,
    execute,
    parse,
)
from cs_pipeline_testing.salesforce_server.store import Clock, SalesforceStore, salesforce_id
from cs_pipeline_tests.support.processes import started


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory) -> Path:
    """The demo generator's CRM export (demo/crm is generated, not part of the repository)."""
    root = tmp_path_factory.mktemp("export")
    return generate_tenant(root, end_date=date(2025, 11, 20), days=1, progress=None).latest_crm_export


def exported(crm_dir: Path, object_name: str) -> list[dict[str, str]]:
    with (crm_dir / f"{object_name}.csv").open() as handle:
        return list(csv.DictReader(handle))
T0 = datetime(2025, 11, 21, 8, 15, tzinfo=timezone.utc)
ACCOUNT_FIELDS = "Id, Name, Licenses__c, Customer_Since__c, Status__c, CreatedDate, SystemModstamp, IsDeleted"


@pytest.fixture
def server():
    store = SalesforceStore(clock=Clock(T0))
    with LocalSalesforceServer(store, ApiConfig(query_page_size=3)) as running:
        yield running


def seed_accounts(server: LocalSalesforceServer, count: int = 10) -> list[str]:
    """Accounts 'Account 00'.. inserted one write each, so SystemModstamp is T0, T0+1s, ..."""
    ids = []
    for i in range(count):
        fields = {
            "Name": f"Account {i:02d}",
            "Licenses__c": float(i * 10) if i % 3 else None,  # null for 0, 3, 6, 9
            "Customer_Since__c": date(2024, 1, 1 + i),
            "Status__c": "Pro" if i % 2 else "Trial",
        }
        ids += server.store.insert("Account", [fields])
    return ids


def login(server: LocalSalesforceServer) -> Salesforce:
    return Salesforce(
        username=server.username,
        password=server.password,
        security_token=server.security_token,
        session=server.requests_session(),
        domain="login",
    )


def direct(server: LocalSalesforceServer, session_id: str | None = None) -> Salesforce:
    return Salesforce(
        instance_url=server.instance_url,
        session_id=session_id or server.new_session_id(),
        session=server.requests_session(),
    )


def csv_rows(pages: list[str]) -> list[dict[str, str]]:
    return [row for page in pages for row in csv.DictReader(io.StringIO(page))]


# --- connecting ----------------------------------------------------------------------------


def test_soap_login_through_the_proxy_gives_the_local_instance(server):
    seed_accounts(server, 2)
    sf = login(server)

    port = server.instance_url.rsplit(":", 1)[1]
    assert sf.sf_instance == f"127.0.0.1:{port}"
    assert "login.salesforce.com:443" in server.proxy_tunnels
    assert server.request_log.count("/services/Soap/u/59.0", method="POST") == 1
    assert sf.query("SELECT Name FROM Account ORDER BY Name")["totalSize"] == 2
    assert server.ca_path.endswith("ca.pem") and Path(server.ca_path).read_text().startswith("-----BEGIN CERTIFICATE")


def test_wrong_password_is_an_invalid_login_fault(server):
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            username=server.username,
            password="wrong",
            security_token=server.security_token,
            session=server.requests_session(),
        )
    assert failure.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in failure.value.auth_message


def test_password_with_xml_characters_survives_the_soap_envelope():
    config = ApiConfig(username="ops@example.com", password="p<&>'\"x", security_token="T0K")
    with LocalSalesforceServer(config=config) as running:
        assert login(running).session_id


def test_instance_url_and_session_id_auth_with_issued_and_registered_ids(server):
    seed_accounts(server, 1)
    assert direct(server).query("SELECT Id FROM Account")["totalSize"] == 1

    server.sessions.register("00D000000000001!preconfigured")
    assert direct(server, "00D000000000001!preconfigured").query("SELECT Id FROM Account")["totalSize"] == 1

    with pytest.raises(SalesforceExpiredSession) as expired:
        direct(server, "00D000000000001!unknown").query("SELECT Id FROM Account")
    assert expired.value.status == 401
    assert expired.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_versions_list_needs_no_session(server):
    response = server.requests_session().get(f"{server.instance_url}/services/data/")
    assert response.status_code == 200
    assert {"label": "v59.0", "url": "/services/data/v59.0", "version": "59.0"} in response.json()


# --- REST query ------------------------------------------------------------------------------


def test_query_all_follows_next_records_url_pages(server):
    ids = seed_accounts(server)
    sf = direct(server)

    first = sf.query(f"SELECT {ACCOUNT_FIELDS} FROM Account")
    assert (first["totalSize"], first["done"], len(first["records"])) == (10, False, 3)
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w{15}-3", first["nextRecordsUrl"])

    result = sf.query_all(f"SELECT {ACCOUNT_FIELDS} FROM Account")
    assert [record["Id"] for record in result["records"]] == ids
    assert server.request_log.count("/query/") == 1 + 4  # the single query above, then 1 + 3 more pages

    second = result["records"][1]
    assert second["attributes"] == {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{ids[1]}"}
    assert second["Licenses__c"] == 10.0 and isinstance(second["Licenses__c"], float)
    assert second["Customer_Since__c"] == "2024-01-02"
    assert second["CreatedDate"] == second["SystemModstamp"] == "2025-11-21T08:15:01.000+0000"
    assert second["IsDeleted"] is False
    assert result["records"][0]["Licenses__c"] is None


def test_query_all_endpoint_sees_deleted_records_and_query_does_not(server):
    ids = seed_accounts(server, 4)
    server.store.delete("Account", [ids[0]])
    sf = direct(server)

    live = sf.query_all("SELECT Id, IsDeleted FROM Account")
    everything = sf.query_all("SELECT Id, IsDeleted, SystemModstamp FROM Account", include_deleted=True)

    assert [record["Id"] for record in live["records"]] == ids[1:]
    deleted = [record for record in everything["records"] if record["IsDeleted"]]
    assert [record["Id"] for record in deleted] == [ids[0]]
    assert deleted[0]["SystemModstamp"] == "2025-11-21T08:15:04.000+0000"  # the delete is the 5th write
    assert server.request_log.count("/queryAll/") >= 1


def test_relationship_paths_are_nested_objects_or_null(server):
    product_ids = server.store.insert("Product2", [{"Name": "Widget 1", "ProductCode": "Widget1"}])
    parent_id, child_id = seed_accounts(server, 2)
    server.store.update("Account", child_id, {"ParentId": parent_id})
    with_product, without_product = server.store.insert(
        "Asset",
        [{"AccountId": child_id, "Product2Id": product_ids[0], "Quantity": 3}, {"AccountId": child_id}],
    )
    sf = direct(server)

    assets = sf.query_all("SELECT Id, Product2.ProductCode, Product2.Name, Quantity FROM Asset ORDER BY Quantity")
    by_id = {record["Id"]: record for record in assets["records"]}
    assert by_id[with_product]["Product2"] == {
        "attributes": {"type": "Product2", "url": f"/services/data/v59.0/sobjects/Product2/{product_ids[0]}"},
        "ProductCode": "Widget1",
        "Name": "Widget 1",
    }
    assert by_id[with_product]["Quantity"] == 3.0
    assert by_id[without_product]["Product2"] is None

    accounts = sf.query_all("SELECT Name, Parent.Name FROM Account WHERE Parent.Name = 'account 00'")["records"]
    assert [(record["Name"], record["Parent"]["Name"]) for record in accounts] == [("Account 01", "Account 00")]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("SystemModstamp >= 2025-11-21T08:15:05Z", [5, 6, 7, 8, 9]),
        ("SystemModstamp > 2025-11-21T08:15:05.000Z", [6, 7, 8, 9]),
        ("SystemModstamp <= 2025-11-21T09:15:01+01:00", [0, 1]),
        ("SystemModstamp = 2025-11-21T08:15:02.000+0000", [2]),
        ("Customer_Since__c < 2024-01-03", [0, 1]),
        ("Name = 'ACCOUNT 04'", [4]),
        ("Name > 'Account 07' AND Status__c != 'Trial'", [9]),
        ("Licenses__c >= 50", [5, 7, 8]),
        ("Licenses__c = null", [0, 3, 6, 9]),
        ("Licenses__c != 10.0 AND Licenses__c < 30", [2]),
        ("Status__c != 'pro'", [0, 2, 4, 6, 8]),
        ("IsDeleted = false AND Licenses__c != null AND Customer_Since__c >= 2024-01-08", [7, 8]),
    ],
)
def test_where_conditions_through_the_client(server, where, expected):
    ids = seed_accounts(server)
    records = direct(server).query_all(f"SELECT Id FROM Account WHERE {where}")["records"]
    assert [ids.index(record["Id"]) for record in records] == expected


def test_order_by_and_limit(server):
    seed_accounts(server)
    sf = direct(server)

    ranked = sf.query_all("SELECT Name FROM Account ORDER BY Licenses__c DESC, Name ASC LIMIT 4")["records"]
    assert [record["Name"] for record in ranked] == ["Account 08", "Account 07", "Account 05", "Account 04"]

    nulls_first = sf.query_all("select name from account order by licenses__c desc nulls first, name desc limit 5")
    assert [record["Name"] for record in nulls_first["records"]] == [
        "Account 09", "Account 06", "Account 03", "Account 00", "Account 08",
    ]  # fmt: skip
    assert sf.query("SELECT Id FROM Account LIMIT 0") == {"totalSize": 0, "done": True, "records": []}


@pytest.mark.parametrize(
    ("soql", "error_code", "named"),
    [
        ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'", MALFORMED_QUERY, "'OR'"),
        ("SELECT COUNT() FROM Account", MALFORMED_QUERY, "'('"),
        ("SELECT Id FROM Account WHERE Name = 'open", MALFORMED_QUERY, "'open"),
        ("SELECT Id, Nope__c FROM Account", INVALID_FIELD, "'Nope__c'"),
        ("SELECT Id FROM Opportunity", INVALID_TYPE, "'Opportunity'"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2025-01-01", INVALID_FIELD, "'CreatedDate'"),
    ],
)
def test_malformed_queries_raise_salesforce_malformed_request(server, soql, error_code, named):
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        direct(server).query(soql)
    assert malformed.value.status == 400
    [error] = malformed.value.content
    assert error["errorCode"] == error_code
    assert named in error["message"]


def test_request_log_keeps_query_strings_and_soql(server):
    seed_accounts(server, 1)
    direct(server).query("SELECT Id FROM Account WHERE Name = 'Account 00'")

    [entry] = server.request_log.entries("/query/")
    assert entry.params == {"q": ["SELECT Id FROM Account WHERE Name = 'Account 00'"]}
    assert entry.status == 200
    assert server.request_log.soql() == ["SELECT Id FROM Account WHERE Name = 'Account 00'"]
    assert server.request_log.counts_by_path()["/services/data/v59.0/query/"] == 1


# --- describe --------------------------------------------------------------------------------


def test_describe_reports_types_and_relationships(server):
    sf = direct(server)
    fields = {spec["name"]: spec for spec in sf.Asset.describe()["fields"]}

    assert fields["Product2Id"] == {
        "name": "Product2Id", "type": "reference", "label": "Product ID", "nillable": True,
        "referenceTo": ["Product2"], "relationshipName": "Product2", "custom": False,
    }  # fmt: skip
    assert {name: spec["type"] for name, spec in fields.items()} == {
        "Id": "id", "AccountId": "reference", "Product2Id": "reference", "Status": "picklist",
        "Quantity": "double", "Price": "currency", "InstallDate": "date", "IsDeleted": "boolean",
        "CreatedDate": "datetime", "SystemModstamp": "datetime",
    }  # fmt: skip
    account = {spec["name"]: spec for spec in sf.Account.describe()["fields"]}
    assert account["ParentId"]["relationshipName"] == "Parent" and account["ParentId"]["referenceTo"] == ["Account"]
    assert account["Contract_Value__c"]["type"] == "currency" and account["Contract_Value__c"]["custom"] is True
    assert account["Name"]["nillable"] is False
    assert [item["name"] for item in sf.describe()["sobjects"]] == ["Account", "Product2", "Contact", "Asset"]

    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.Opportunity.describe()
    assert missing.value.content[0]["errorCode"] == "NOT_FOUND"


def test_custom_object_schema_is_queryable(server):
    server.store.register(
        ObjectSchema(
            "Subscription__c",
            "a0S",
            (
                FieldSpec("Account__c", FieldType.REFERENCE, reference_to="Account", relationship_name="Account__r"),
                FieldSpec("Seats__c", FieldType.INT),
                FieldSpec("Active__c", FieldType.BOOLEAN),
            ),
        )
    )
    [account_id] = seed_accounts(server, 1)
    [subscription_id] = server.store.insert("Subscription__c", [{"Account__c": account_id, "Seats__c": 7}])
    assert subscription_id.startswith("a0S") and len(subscription_id) == 18

    [record] = direct(server).query("SELECT Seats__c, Active__c, Account__r.Name FROM Subscription__c")["records"]
    assert (record["Seats__c"], record["Active__c"], record["Account__r"]["Name"]) == (7, None, "Account 00")


# --- Bulk API 2.0 ------------------------------------------------------------------------------


def test_bulk_query_pages_through_locators(server):
    server.config.bulk_max_records = 4
    server.config.bulk_in_progress_polls = 2
    ids = seed_accounts(server)
    sf = direct(server)

    pages = list(sf.bulk2.Account.query(f"SELECT {ACCOUNT_FIELDS} FROM Account", max_records=50, wait=0))

    assert len(pages) == 3
    rows = csv_rows(pages)
    assert [row["Id"] for row in rows] == ids
    assert list(rows[0]) == [name.strip() for name in ACCOUNT_FIELDS.split(",")]
    assert rows[0] | {"Id": ""} == {
        "Id": "", "Name": "Account 00", "Licenses__c": "", "Customer_Since__c": "2024-01-01", "Status__c": "Trial",
        "CreatedDate": "2025-11-21T08:15:00.000Z", "SystemModstamp": "2025-11-21T08:15:00.000Z", "IsDeleted": "false",
    }  # fmt: skip
    assert rows[1]["Licenses__c"] == "10.0"

    results = server.request_log.entries("/results")
    assert [entry.params.get("locator") for entry in results] == [None, ["NA"], ["OA"]]  # base64 of "4", "8"
    assert [entry.params["maxRecords"] for entry in results] == [["50"]] * 3
    status_polls = [entry for entry in server.request_log.entries("/jobs/query/750") if "/results" not in entry.path]
    assert len(status_polls) == 3  # InProgress twice, then JobComplete


def test_bulk_query_all_download_and_relationship_columns(server, tmp_path):
    server.config.bulk_max_records = 2
    [product_id] = server.store.insert("Product2", [{"Name": "Widget 1", "ProductCode": "Widget1"}])
    [account_id] = seed_accounts(server, 1)
    asset_ids = server.store.insert(
        "Asset", [{"AccountId": account_id, "Product2Id": product_id, "Price": 12.5}] * 3 + [{"AccountId": account_id}]
    )
    server.store.delete("Asset", asset_ids[:1])
    sf = direct(server)
    soql = "SELECT Id, Product2.ProductCode, Price, IsDeleted FROM Asset"

    live = csv_rows(list(sf.bulk2.Asset.query(soql, wait=0)))
    everything = csv_rows(list(sf.bulk2.Asset.query_all(soql, wait=0)))
    downloads = sf.bulk2.Asset.download(soql, path=str(tmp_path), wait=0)

    assert [row["Id"] for row in live] == asset_ids[1:]
    assert [(row["Id"], row["IsDeleted"]) for row in everything][0] == (asset_ids[0], "true")
    assert [row["Id"] for row in everything] == asset_ids
    assert [(row["Product2.ProductCode"], row["Price"]) for row in live] == [("Widget1", "12.5")] * 2 + [("", "")]
    assert [result["number_of_records"] for result in downloads] == [2, 1]
    downloaded = csv_rows([Path(result["file"]).read_text(encoding="utf-8") for result in downloads])
    assert downloaded == live


def test_bulk_query_errors(server):
    sf = direct(server)
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        list(sf.bulk2.Account.query("SELECT Id FROM Account GROUP BY Name", wait=0))
    assert malformed.value.content[0]["errorCode"] == MALFORMED_QUERY

    server.faults.inject("bulk_job_failed", message="InvalidBatch : too many rows")
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : too many rows"):
        list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))
    assert list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0)) == ["Id\n"]  # the next job is fine


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "exception", "status", "error_code"),
    [
        ("server_error", {}, SalesforceGeneralError, 500, "UNKNOWN_EXCEPTION"),
        ("server_error", {"status": 503}, SalesforceGeneralError, 503, "SERVER_UNAVAILABLE"),
        ("rate_limited", {}, SalesforceGeneralError, 429, "TOO_MANY_REQUESTS"),
        ("request_limit_exceeded", {}, SalesforceRefusedRequest, 403, "REQUEST_LIMIT_EXCEEDED"),
    ],
)
def test_http_faults_are_consumed_per_request(server, kind, options, exception, status, error_code):
    seed_accounts(server, 1)
    sf = direct(server)
    server.faults.inject(kind, times=2, path_contains="/query", **options)

    for _ in range(2):
        with pytest.raises(exception) as failure:
            sf.query("SELECT Id FROM Account")
        assert failure.value.status == status
        assert failure.value.content[0]["errorCode"] == error_code
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1
    assert [entry.status for entry in server.request_log.entries("/query")] == [status, status, 200]
    assert server.faults.pending() == 0


def test_request_limit_message_is_salesforces(server):
    server.faults.inject("request_limit_exceeded")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        direct(server).query("SELECT Id FROM Account")
    assert refused.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


def test_connection_reset_raises_connection_error(server):
    seed_accounts(server, 1)
    sf = direct(server)
    server.faults.inject("connection_reset", path_contains="/query")

    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM Account")
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1
    assert [entry.status for entry in server.request_log.entries("/query")] == [None, 200]


def test_a_retrying_client_session_gets_through_injected_errors(server):
    seed_accounts(server, 1)
    session = server.requests_session()
    retry = Retry(total=3, status_forcelist=[429, 500, 503], allowed_methods=None, backoff_factor=0)
    session.mount("https://", HTTPAdapter(max_retries=retry))
    sf = Salesforce(instance_url=server.instance_url, session_id=server.new_session_id(), session=session)
    server.faults.inject("server_error", status=503, path_contains="/query")
    server.faults.inject("rate_limited", path_contains="/query")

    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1
    assert [entry.status for entry in server.request_log.entries("/query")] == [503, 429, 200]


def test_expired_sessions_fail_direct_auth_and_password_auth_logs_in_again(server):
    seed_accounts(server, 1)
    by_session_id = direct(server)
    by_password = login(server)

    server.faults.inject("expire_sessions", path_contains="/query")
    with pytest.raises(SalesforceExpiredSession) as expired:
        by_session_id.query("SELECT Id FROM Account")
    assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"

    server.faults.inject("expire_sessions", path_contains="/query")
    old_session = by_password.session_id
    assert by_password.query("SELECT Id FROM Account")["totalSize"] == 1  # simple-salesforce re-logs in on 401
    assert by_password.session_id != old_session
    assert server.request_log.count("/services/Soap") == 2
    assert [entry.status for entry in server.request_log.entries("/query")] == [401, 401, 200]


def test_faults_can_hit_the_login(server):
    server.faults.inject("server_error", path_contains="/services/Soap")
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        login(server)
    assert failure.value.code == 500
    assert login(server).session_id


def test_fault_arguments_are_checked(server):
    with pytest.raises(ValueError):
        server.faults.inject("meltdown")
    with pytest.raises(ValueError, match="status"):
        server.faults.inject("rate_limited", status=503)
    with pytest.raises(ValueError, match="times"):
        server.faults.inject("server_error", times=0)


# --- store and CSV loading ---------------------------------------------------------------------


def test_writes_get_strictly_increasing_whole_second_stamps():
    clock = Clock(datetime(2025, 1, 1, 12, 0, 0, 500_000, tzinfo=timezone.utc))
    store = SalesforceStore(clock=clock)
    first, second = store.insert("Account", [{"Name": "A"}, {"Name": "B"}])  # one write, one stamp
    store.update("Account", first, {"Licenses__c": 3})
    clock.advance(timedelta(minutes=5))
    store.delete("Account", [second])

    a, b = store.records("Account", include_deleted=True)
    assert b["CreatedDate"] == a["CreatedDate"] == datetime(2025, 1, 1, 12, tzinfo=timezone.utc)
    assert a["SystemModstamp"] == datetime(2025, 1, 1, 12, 0, 1, tzinfo=timezone.utc)  # frozen clock: +1s
    assert (a["Licenses__c"], a["IsDeleted"]) == (3.0, False)
    assert (b["SystemModstamp"], b["IsDeleted"]) == (datetime(2025, 1, 1, 12, 5, tzinfo=timezone.utc), True)
    assert store.records("Account") == [a]
    assert first == salesforce_id("001", 1) and len(first) == 18


def test_store_rejects_what_salesforce_would():
    store = SalesforceStore()
    [record_id] = store.insert("Account", [{"Name": "A"}])
    with pytest.raises(ValueError, match="SystemModstamp"):
        store.update("Account", record_id, {"SystemModstamp": T0})
    with pytest.raises(KeyError, match="Bogus__c"):
        store.insert("Account", [{"Bogus__c": 1}])
    with pytest.raises(TypeError, match="Licenses__c"):
        store.insert("Account", [{"Licenses__c": True}])
    with pytest.raises(ValueError, match="'many'"):
        store.insert("Account", [{"Licenses__c": "many"}])
    store.delete("Account", [record_id])
    with pytest.raises(ValueError, match="deleted"):
        store.update("Account", record_id, {"Name": "B"})


def test_loading_the_demo_exports_keeps_ids_and_stamps_and_creates_products(demo_export):
    store = SalesforceStore(clock=Clock(T0))
    accounts, contacts, assets = (exported(demo_export, name) for name in ("Account", "Contact", "Asset"))
    counts = {"Account": len(accounts), "Contact": len(contacts), "Asset": len(assets)}
    assert store.load_csv_exports(demo_export) == counts
    # the folder of dated exports loads the newest one (the CRM as it is now)
    assert SalesforceStore(clock=Clock(T0)).load_csv_exports(demo_export.parent) == counts

    row = next(row for row in accounts if row["ParentId"] and row["Renewal_Date__c"] and row["Licenses__c"])
    account = store.get("Account", row["Id"])
    assert account is not None
    assert account["ParentId"] == row["ParentId"]
    assert account["SystemModstamp"] == datetime.strptime(row["SystemModstamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert account["Renewal_Date__c"] == date.fromisoformat(row["Renewal_Date__c"])
    assert (account["Licenses__c"], account["IsDeleted"]) == (float(row["Licenses__c"]), row["IsDeleted"] == "true")
    products = store.records("Product2")
    assert sorted((product["ProductCode"], product["Name"]) for product in products) == sorted(
        {(asset["Product2.ProductCode"], asset["Product2.Name"]) for asset in assets}
    )
    asset = store.get("Asset", assets[0]["Id"])
    assert store.get("Product2", asset["Product2Id"])["ProductCode"] == assets[0]["Product2.ProductCode"]
    # later writes stamp after the newest exported stamp, so a watermark never misses them
    newest = max(record["SystemModstamp"] for name in ("Account", "Contact", "Asset") for record in store.records(name))
    store.update("Account", row["Id"], {"Name": "Renamed"})
    assert store.get("Account", row["Id"])["SystemModstamp"] > newest


def test_loader_names_the_bad_cell(tmp_path):
    (tmp_path / "Account.csv").write_text("Id,Name,Licenses__c,IsDeleted\n001A,Acme,12,true\n001B,Beta,lots,false\n")
    with pytest.raises(ValueError, match=r"Account.csv line 3: column Licenses__c: could not convert.*'lots'"):
        SalesforceStore().load_csv_exports(tmp_path)
    (tmp_path / "Account.csv").write_text("Id,Nickname__c\n001A,x\n")
    with pytest.raises(ValueError, match="column Nickname__c is not a field of Account"):
        SalesforceStore().load_csv_exports(tmp_path)


def read_lines(process: subprocess.Popen, count: int, timeout: float) -> list[str]:
    """The first `count` lines `process` prints, waited for at most `timeout` seconds."""
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout.readline() for _ in range(count)), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        pytest.fail(f"{count} lines not printed in {timeout:g} s, only: {lines}")
    return lines


def open_idle_connections(clients: ExitStack, instance_url: str, proxy_url: str, ca_path: str) -> list[socket.socket]:
    """What clients may leave open on a server: a keep-alive HTTPS connection after a request,
    an idle tunnel through the proxy, a TLS handshake begun and never finished; their sockets."""
    port = int(instance_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=ca_path)
    keep_alive = clients.enter_context(closing(HTTPSConnection("127.0.0.1", port, context=context, timeout=10)))
    keep_alive.request("GET", "/services/data/")
    answer = keep_alive.getresponse()
    answer.read()
    assert (answer.status, answer.will_close) == (200, False)  # the server keeps the connection open
    proxy_host, proxy_port = proxy_url.removeprefix("http://").split(":")
    tunnel = clients.enter_context(socket.create_connection((proxy_host, int(proxy_port)), timeout=10))
    tunnel.sendall(b"CONNECT login.salesforce.com:443 HTTP/1.1\r\n\r\n")
    assert tunnel.recv(1024).startswith(b"HTTP/1.1 200")
    silent = clients.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
    silent.sendall(b"\x16\x03\x01")  # the first bytes of a TLS ClientHello, and no more
    return [keep_alive.sock, tunnel, silent]


def test_stop_ends_every_connection_at_once(server):
    with ExitStack() as clients:
        connections = open_idle_connections(clients, server.instance_url, server.proxy_url, server.ca_path)
        stopping = time.monotonic()
        server.stop()
        assert time.monotonic() - stopping < 1
        for connection in connections:
            connection.settimeout(2)
            try:
                received = connection.recv(1024)
            except ConnectionResetError:
                # closed while bytes the server never read were waiting (a ClientHello): a reset,
                # which is as closed as an end of file; a timeout would raise TimeoutError instead
                received = b""
            assert received == b"", connection  # closed by the server, not left to its timeout


@pytest.mark.e2e
@pytest.mark.parametrize("sigint", ["default", "ignored by the parent"])
def test_command_line_serves_the_demo_exports_until_ctrl_c_whatever_its_clients_do(demo_export, sigint):
    """Ctrl-C stops the command-line server at once, while clients keep a keep-alive HTTPS
    connection, an idle tunnel through the proxy and a half-made TLS handshake open; also as
    the background job of a script, which inherits SIGINT ignored."""
    accounts, contacts, assets = (exported(demo_export, name) for name in ("Account", "Contact", "Asset"))
    server = "cs_pipeline_testing.salesforce_server.local_server"
    command = [sys.executable, "-m", server, "--crm-dir", str(demo_export)]
    if sigint == "ignored by the parent":
        command = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]
    with started(command, stdout=subprocess.PIPE, text=True) as process, ExitStack() as clients:
        lines = read_lines(process, 8, timeout=60)
        printed = {name: value.strip() for name, value in (line.strip().split(": ", 1) for line in lines[1:7])}
        assert f"(Account: {len(accounts)}, Contact: {len(contacts)}, Asset: {len(assets)})" in lines[0]
        instance_url = re.search(r"https://\S+", lines[0]).group()
        session = clients.enter_context(requests.Session())
        session.trust_env = False
        session.verify = printed["CA certificate"]
        sf = Salesforce(instance_url=instance_url, session_id=printed["session id"], session=session)
        assert sf.query(f"SELECT Id FROM Account WHERE Id = '{accounts[0]['Id']}'")["totalSize"] == 1

        open_idle_connections(clients, instance_url, printed["proxy (https CONNECT)"], printed["CA certificate"])

        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)  # Ctrl-C: the server stops and removes its CA directory
        try:
            returncode = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("the server still runs 5 s after SIGINT")
        assert returncode == 0
        assert time.monotonic() - interrupted < 2
    assert not Path(printed["CA certificate"]).exists()


# --- SOQL on its own -----------------------------------------------------------------------------

SCHEMAS = {schema.name: schema for schema in DEFAULT_SCHEMAS}


def run(soql: str, records: list[dict]) -> list[dict]:
    return execute(bind(soql, SCHEMAS), records, lambda reference, record_id: None)


def soql_error(soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as failure:
        bind(soql, SCHEMAS)
    return failure.value


def test_parse_reads_every_clause_case_insensitively():
    query = parse("select Id, product2.productcode from asset where Quantity >= -2.5 and Status != null "
                  "order by InstallDate desc nulls first, Id limit 7")  # fmt: skip
    assert query.object_name == "asset"
    assert query.fields == ("Id", "product2.productcode")
    assert [(c.path, c.op, c.literal) for c in query.where] == [("Quantity", ">=", -2.5), ("Status", "!=", None)]
    assert [(o.path, o.descending, o.nulls_first) for o in query.order_by] == [
        ("InstallDate", True, True), ("Id", False, True),
    ]  # fmt: skip
    assert query.limit == 7
    bound = bind("SELECT product2.productcode FROM asset", SCHEMAS)
    assert [path.text for path in bound.fields] == ["Product2.ProductCode"]


def test_datetime_literal_forms_are_the_same_instant():
    forms = ["2025-11-21T08:15:00Z", "2025-11-21T08:15:00.000Z", "2025-11-21T08:15:00+00:00",
             "2025-11-21T08:15:00+0000", "2025-11-21T09:15:00+01:00"]  # fmt: skip
    assert {parse(f"SELECT Id FROM Account WHERE SystemModstamp = {form}").where[0].literal for form in forms} == {T0}


def test_ge_includes_an_equal_datetime_and_gt_does_not():
    records = [{"Id": "a", "SystemModstamp": T0 - timedelta(seconds=1)}, {"Id": "b", "SystemModstamp": T0},
               {"Id": "c", "SystemModstamp": T0 + timedelta(milliseconds=1)}]  # fmt: skip
    at_or_after = run("SELECT Id FROM Account WHERE SystemModstamp >= 2025-11-21T08:15:00Z", records)
    after = run("SELECT Id FROM Account WHERE SystemModstamp > 2025-11-21T08:15:00.000Z", records)
    assert [record["Id"] for record in at_or_after] == ["b", "c"]
    assert [record["Id"] for record in after] == ["c"]


def test_string_escapes_and_case_insensitive_text():
    query = parse(r"SELECT Id FROM Account WHERE Name = 'O\'Brien \\ \"Co\"\n\t'")
    assert query.where[0].literal == 'O\'Brien \\ "Co"\n\t'
    records = [{"Id": "a", "Name": "O'Brien & Sons"}, {"Id": "b", "Name": "o'brien & sons"}, {"Id": "c"}]
    assert [r["Id"] for r in run(r"SELECT Id FROM Account WHERE Name = 'O\'BRIEN & SONS'", records)] == ["a", "b"]
    assert [r["Id"] for r in run("SELECT Id FROM Account WHERE Name != 'x'", records)] == ["a", "b", "c"]
    assert [r["Id"] for r in run("SELECT Id FROM Account WHERE Name < 'p'", records)] == ["a", "b"]


def test_order_by_places_nulls_like_salesforce():
    records = [{"Id": "a", "Licenses__c": 2.0}, {"Id": "b"}, {"Id": "c", "Licenses__c": 1.0}]

    def order(clause: str) -> list[str]:
        return [record["Id"] for record in run(f"SELECT Id FROM Account ORDER BY {clause}", records)]

    assert order("Licenses__c") == ["b", "c", "a"]
    assert order("Licenses__c DESC") == ["a", "c", "b"]
    assert order("Licenses__c ASC NULLS LAST") == ["c", "a", "b"]
    assert order("Licenses__c DESC NULLS FIRST") == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("soql", "error_code", "message"),
    [
        ("", MALFORMED_QUERY, "unexpected end of query"),
        ("SELECT FROM Account", MALFORMED_QUERY, "unexpected token: 'FROM'"),
        ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'", MALFORMED_QUERY, "'OR' at column 41"),
        ("SELECT Id FROM Account WHERE NOT Name = 'a'", MALFORMED_QUERY, "'NOT'"),
        ("SELECT Id FROM Account WHERE Name IN ('a')", MALFORMED_QUERY, "'IN'"),
        ("SELECT Id FROM Account WHERE Name LIKE 'a%'", MALFORMED_QUERY, "'LIKE'"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", MALFORMED_QUERY, "'('"),
        ("SELECT Status__c FROM Account GROUP BY Status__c", MALFORMED_QUERY, "'GROUP'"),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 5", MALFORMED_QUERY, "'OFFSET'"),
        ("SELECT Id FROM Account LIMIT 2.5", MALFORMED_QUERY, "'2.5'"),
        ("SELECT Id FROM Account WHERE CreatedDate > TODAY", MALFORMED_QUERY, "'TODAY'"),
        ('SELECT Id FROM Account WHERE Name = "a"', MALFORMED_QUERY, "'\"'"),
        ("SELECT Id FROM Account WHERE Name = 'unterminated", MALFORMED_QUERY, "unterminated string literal"),
        (r"SELECT Id FROM Account WHERE Name = 'a\qb'", MALFORMED_QUERY, "invalid escape sequence '\\q'"),
        ("SELECT Id FROM Account WHERE Licenses__c > null", MALFORMED_QUERY, "null can only be compared"),
        ("SELECT Id FROM Account WHERE SystemModstamp > 2025-11-21T08:15:00", MALFORMED_QUERY, "2025-11-21T08:15:00"),
        ("SELECT Id FROM Account WHERE Customer_Since__c > 2025-02-30", MALFORMED_QUERY, "2025-02-30"),
        ("SELECT Id, Name, id FROM Account", MALFORMED_QUERY, "duplicate field selected: Id"),
        ("SELECT Id FROM Accounts", INVALID_TYPE, "sObject type 'Accounts' is not supported"),
        ("SELECT Nope FROM Account", INVALID_FIELD, "No such column 'Nope' on entity 'Account'"),
        ("SELECT Product2.Nope FROM Asset", INVALID_FIELD, "No such column 'Nope' on entity 'Product2'"),
        ("SELECT Product.Name FROM Asset", INVALID_FIELD, "Didn't understand relationship 'Product'"),
        ("SELECT Id FROM Account WHERE SystemModstamp > 2025-11-21", INVALID_FIELD, "must be of type dateTime"),
        ("SELECT Id FROM Account WHERE Customer_Since__c > 2025-11-21T00:00:00Z", INVALID_FIELD, "of type date "),
        ("SELECT Id FROM Account WHERE Name = 5", INVALID_FIELD, "of type string and should be enclosed"),
        ("SELECT Id FROM Account WHERE Licenses__c > '5'", INVALID_FIELD, "of type number"),
        ("SELECT Id FROM Account WHERE IsDeleted = 'true'", INVALID_FIELD, "of type boolean"),
    ],
)
def test_unsupported_or_wrong_soql_is_rejected_naming_the_token(soql, error_code, message):
    error = soql_error(soql)
    assert error.error_code == error_code
    assert message in error.message
