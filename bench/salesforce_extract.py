"""Benchmark: extract 200,000 Accounts from Salesforce through Bulk API 2.0 into the warehouse.

Loads generated Account records (the fields the bundled config maps) into the local
Salesforce-compatible server, then times, in this process:

  1. a full sync (`sync_object`, full refresh): describe, a Bulk 2.0 queryAll job paged by
     Sforce-Locator, the CSV pages parsed and typed, the mirror table written; and
  2. an incremental sync after 1,000 records were modified.

The client is the unmodified simple-salesforce over HTTPS (username/password login through
the server's CONNECT proxy). Peak memory is this process's maximum resident set, server included.
Usage: python bench/salesforce_extract.py [--accounts N] [--workdir DIR]
"""

import argparse
import resource
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cs_pipeline.config import load_config
from cs_pipeline.crm.mapping import mapped_fields
from cs_pipeline.crm.salesforce_extraction import SalesforceResource, sync_object
from cs_pipeline.warehouse import connect
from cs_pipeline_testing.salesforce_server.local_server import LocalSalesforceServer

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "demo" / "cs_pipeline.yaml"
STATUSES = ["Trial", "Pro", "Enterprise", "Personal", "Cancelled"]


def accounts(count: int) -> list[dict]:
    start = date(2020, 1, 1)
    return [
        {
            "External_Id__c": f"BENCH-{n:06d}", "Name": f"Account {n}", "Status__c": STATUSES[n % 5],
            "Customer_Since__c": start + timedelta(days=n % 2000), "Contract_Value__c": float(1000 + n % 90_000),
            "Renewal_Date__c": date(2026, 1, 1) + timedelta(days=n % 700), "Licenses__c": float(1 + n % 250),
            "CSM_Risk__c": "0 - NO RISK" if n % 3 else "3 - HIGH", "Segment__c": "Enterprise" if n % 7 == 0 else "SMB",
        }
        for n in range(count)
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/salesforce"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    warehouse = args.workdir / "warehouse.duckdb"
    warehouse.unlink(missing_ok=True)
    fields, optional_fields = mapped_fields(load_config(DEMO_CONFIG))["Account"]

    with LocalSalesforceServer() as server:
        # modified over the past days, a thousand a minute: the overlap re-reads the last ten minutes
        records, ids = accounts(args.accounts), []
        server.store.clock.set(datetime.now(UTC) - timedelta(days=1))
        for start in range(0, len(records), 1000):
            ids += server.store.insert("Account", records[start : start + 1000])
            server.store.clock.advance(timedelta(minutes=1))
        sf = SalesforceResource(
            username=server.username, password=server.password, security_token=server.security_token,
            ca_bundle=server.ca_path, proxy=server.proxy_url, bulk_poll_seconds=0.5,
        )  # fmt: skip
        con = connect(warehouse)

        def sync(full_refresh: bool):
            started = time.perf_counter()
            result = sync_object(
                sf.open(), con, object_name="Account", fields=fields, optional_fields=optional_fields,
                overlap_minutes=10, full_refresh=full_refresh, run_id="bench",
            )  # fmt: skip
            return result, time.perf_counter() - started

        full, full_seconds = sync(full_refresh=True)
        assert (full.api, full.rows) == ("bulk", args.accounts), full
        server.store.clock.set(datetime.now(UTC))
        for record_id in ids[:1000]:
            server.store.update("Account", record_id, {"Name": "Renamed"})
        incremental, incremental_seconds = sync(full_refresh=False)
        con.close()

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"full sync: {full.rows:,} Accounts through Bulk 2.0 in {full_seconds:.1f}s "
        f"({full.rows / full_seconds:,.0f} records/s, {full.pages} locator pages)\n"
        f"incremental sync after 1,000 updates: {incremental_seconds:.1f}s, {incremental.upserted:,} upserted "
        f"through {incremental.api}\npeak RSS {peak:.2f} GiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
