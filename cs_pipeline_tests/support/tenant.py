"""Writing small hand-made tenants (CRM export, landing zone, config) for tests. The fixtures
that give a test such a tenant are in conftest.py (`tenant`, `tenant_files` and the three
fixtures a test module overrides to change what they write)."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from cs_pipeline_tests.support import DEMO

ACCOUNT_HEADER = [
    "Id", "External_Id__c", "Name", "ParentId", "Status__c", "Customer_Since__c", "CreatedDate",
    "Contract_Value__c", "Renewal_Date__c", "Licenses__c", "CSM_Risk__c", "Segment__c",
    "SystemModstamp", "IsDeleted",
]  # fmt: skip
ASSET_HEADER = [
    "Id", "AccountId", "Product2.ProductCode", "Product2.Name", "Status", "Quantity", "Price",
    "InstallDate", "SystemModstamp", "IsDeleted",
]  # fmt: skip
CONTACT_HEADER = ["Id", "AccountId", "Email", "Name", "SystemModstamp", "IsDeleted"]
MODSTAMP = "2025-11-01T00:00:00.000+0000"

# The seed hierarchy (docs/data-model.md#account-hierarchy-and-product-accounts): Acme INC (XYZ)
# with subsidiary Acme Boston (ABC); XYZ holds Widget1, ABC holds Widget2 and Widget1.
APPENDIX_ACCOUNTS = [
    {"Id": "001A", "External_Id__c": "XYZ", "Name": "Acme INC", "Status__c": "Enterprise",
     "Customer_Since__c": "2024-03-01", "Contract_Value__c": "120000", "Licenses__c": "50",
     "Renewal_Date__c": "2026-03-01", "CSM_Risk__c": "0 - NO RISK", "Segment__c": "Enterprise"},
    {"Id": "001B", "External_Id__c": "ABC", "Name": "Acme Boston", "ParentId": "001A", "Status__c": "pro",
     "CreatedDate": "2025-11-10T23:30:00.000-0500", "Contract_Value__c": "30000", "Licenses__c": "10",
     "Segment__c": "Mid-Market"},
]  # fmt: skip
APPENDIX_ASSETS = [
    {"Id": "02i1", "AccountId": "001A", "Product2.ProductCode": "Widget1", "Product2.Name": "Widget 1",
     "Quantity": "20", "Price": "5000", "InstallDate": "2024-04-01"},
    {"Id": "02i2", "AccountId": "001B", "Product2.ProductCode": "Widget2", "Product2.Name": "Widget 2",
     "Status": "Trial"},
    {"Id": "02i3", "AccountId": "001B", "Product2.ProductCode": "Widget1", "Product2.Name": "Widget 1",
     "Quantity": "5"},
]  # fmt: skip
APPENDIX_CONTACTS = [
    {"Id": "003A", "AccountId": "001A", "Email": " Ann@Acme.com ", "Name": "Ann"},
    {"Id": "003B", "AccountId": "001B", "Email": "", "Name": "No Mail"},
]


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def write_crm(crm_dir: Path, accounts: list[dict], assets: list[dict] = (), contacts: list[dict] = ()) -> None:
    """Salesforce-style export files; SystemModstamp and IsDeleted default per record."""
    for name, header, rows in (
        ("Account.csv", ACCOUNT_HEADER, accounts),
        ("Asset.csv", ASSET_HEADER, assets),
        ("Contact.csv", CONTACT_HEADER, contacts),
    ):
        write_csv(crm_dir / name, header, [{"SystemModstamp": MODSTAMP, "IsDeleted": "false", **row} for row in rows])


def write_events_csv(landing: Path, day: str, name: str, rows: list[dict[str, str]]) -> Path:
    path = landing / "usage" / f"date={day}" / name
    write_csv(path, ["event_id", "ts", "account_id", "user_id", "module", "action"], rows)
    return path


CONFIG = """\
crm:
  source: files
  files_dir: crm/
  mapping:
    account: {attributes: {csm_risk: CSM_Risk__c, segment: Segment__c}}
landing: landing/
warehouse: warehouse.duckdb
start_date: "2025-11-01"
profiles:
  - name: default
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
    poor: [{metric: usage_frequency, op: "==", value: Inactive}]
"""


# The deliveries of `tenant`: on the 20th e1 (XYZ) and e2 (ABC_Widget2; 23:30 at -05:00 is 04:30
# UTC on the 21st); on the 21st e1 again, e3 (an account the CRM does not know) and e4 (no account:
# rejected).
APPENDIX_DELIVERIES = {
    "2025-11-20": [
        {"event_id": "e1", "ts": "2025-11-20T10:00:00Z", "account_id": "XYZ", "user_id": "Ann@Acme.com",
         "module": "Billing", "action": "Send invoice"},
        {"event_id": "e2", "ts": "2025-11-20T23:30:00-05:00", "account_id": "ABC_Widget2", "user_id": "bob@acme.com",
         "action": "Login"},
    ],
    "2025-11-21": [
        {"event_id": "e1", "ts": "2025-11-20T10:00:00Z", "account_id": "XYZ", "action": "Send invoice"},
        {"event_id": "e3", "ts": "2025-11-21T08:00:00Z", "account_id": "ghost", "user_id": "g1", "action": "Login"},
        {"event_id": "e4", "ts": "2025-11-21T08:00:00Z", "account_id": "", "action": "Login"},
    ],
}  # fmt: skip

# `config=DEMO_CONFIG`: the bundled demo config (its four profiles and custom metrics, with its
# sql/ folder), partitions from 2025-11-01
DEMO_CONFIG = "<the bundled demo config>"
APPENDIX_CRM = (APPENDIX_ACCOUNTS, APPENDIX_ASSETS, APPENDIX_CONTACTS)
Crm = tuple[Sequence[dict], Sequence[dict], Sequence[dict]]  # accounts, assets, contacts


def write_tenant(
    root: Path,
    *,
    config: str = CONFIG,
    crm: Crm | None = APPENDIX_CRM,
    deliveries: Mapping[str, list[dict[str, str]]] | None = None,
) -> Path:
    """A hand-made tenant in `root`; returns its config path (`root / "cs_pipeline.yaml"`). By
    default the appendix tenant with its config (one `default` profile) and an empty landing zone.

    config: the config's text, or DEMO_CONFIG. crm: (accounts, assets, contacts) of the CRM
    export, or None for no export (a test that writes it as it runs each day). deliveries: day
    -> the event rows of that day's delivery, `a.csv`."""
    if crm is not None:
        write_crm(root / "crm", *crm)
    (root / "landing" / "usage").mkdir(parents=True, exist_ok=True)
    for day, rows in (deliveries or {}).items():
        write_events_csv(root / "landing", day, "a.csv", rows)
    if config == DEMO_CONFIG:
        return write_demo_config(root)
    path = root / "cs_pipeline.yaml"
    path.write_text(config)
    return path


def write_demo_config(root: Path) -> Path:
    """The bundled demo config (with its sql/) in `root`, partitions from 2025-11-01; returns its path."""
    shutil.copytree(DEMO / "sql", root / "sql")
    config = root / "cs_pipeline.yaml"
    config.write_text((DEMO / "cs_pipeline.yaml").read_text() + 'start_date: "2025-11-01"\n')
    return config


def write_generated_tenant(root: Path, end_date, days: int = 2, accounts: int = 8) -> Path:
    """A small generated tenant (cs_pipeline.demo.generator) under the bundled demo config
    (its four profiles and custom metrics), partitions from 2025-11-01; returns the config path."""
    from cs_pipeline.demo.generator import generate_tenant

    generate_tenant(root, end_date=end_date, days=days, accounts=accounts, events_per_day=120, progress=None)
    return write_demo_config(root)
