"""Writing small hand-made tenants (CRM export, landing zone, config) for tests."""

from __future__ import annotations

import csv
from pathlib import Path

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


def write_tenant(root: Path) -> Path:
    """The appendix tenant with its config; returns the config path."""
    write_crm(root / "crm", APPENDIX_ACCOUNTS, APPENDIX_ASSETS, APPENDIX_CONTACTS)
    (root / "landing" / "usage").mkdir(parents=True, exist_ok=True)
    config = root / "cs_pipeline.yaml"
    config.write_text(CONFIG)
    return config


def write_generated_tenant(root: Path, end_date, days: int = 2, accounts: int = 8) -> Path:
    """A small generated tenant (cs_pipeline.demo.generator) under the bundled demo config
    (its four profiles and custom metrics), partitions from 2025-11-01; returns the config path."""
    import shutil

    from cs_pipeline.demo.generator import generate_tenant

    demo = Path(__file__).resolve().parents[1] / "demo"
    generate_tenant(root, end_date=end_date, days=days, accounts=accounts, events_per_day=120, progress=None)
    shutil.copytree(demo / "sql", root / "sql")
    config = root / "cs_pipeline.yaml"
    config.write_text((demo / "cs_pipeline.yaml").read_text() + 'start_date: "2025-11-01"\n')
    return config
