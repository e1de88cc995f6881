"""Crash safety of the Salesforce path: the daily commands of a tenant with `crm.source:
salesforce` (one day, then the next: a full sync of each object, then an incremental one)
killed (SIGKILL) inside the extraction are completed by the next command, with the tables
uninterrupted commands give and a mirror that holds every Salesforce record once.

Real parts only: the local Salesforce-compatible server over HTTPS (in this process), the
unmodified simple-salesforce client in the `cs-pipeline` process, DuckDB, a Dagster instance.
The kill lands inside the step for a reason of production, not of the test: the tenant's
`bulk_threshold` is low, so the syncs of Account (12 records, every one modified today) go
through a Bulk API 2.0 job, and simple-salesforce waits `bulk_poll_seconds` (2 s by default)
before it first asks for the job's state. The test kills when the server has received the job:
the kill is then inside that wait. The moment between the mirror's write and the bookmark's is
too short to hit from outside: the last test kills a sync there, at the bookmark's line."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_pipeline import runs
from cs_pipeline.cli import dagster_instance
from cs_pipeline.crm.salesforce_extraction import SalesforceResource, sync_object
from cs_pipeline.warehouse import connect
from cs_pipeline_testing.salesforce_server.faults import RecordedRequest
from cs_pipeline_testing.salesforce_server.local_server import LocalSalesforceServer
from cs_pipeline_tests.support import processes
from cs_pipeline_tests.support.commands import COMMAND_TIMEOUT, Command, public_tables
from cs_pipeline_tests.support.tenant import write_generated_tenant

pytestmark = pytest.mark.e2e

DAYS = ("2025-11-04", "2025-11-05")  # two daily runs: a full sync of each object, then an incremental one
OBJECTS = ("Account", "Asset", "Contact")
# the daily routine: a command per day (a backfill of both days would sync once, for its one daily run)
DAILY_COMMANDS = tuple(("materialize", "--date", day) for day in DAYS)


@pytest.fixture(scope="module")
def stocked(tmp_path_factory) -> Path:
    """A generated tenant of 12 accounts and two days, never run, its CRM export moved out to
    `crm_export` beside it: the config reads Salesforce (`bulk_threshold: 10`)."""
    root = tmp_path_factory.mktemp("sf_stocked")
    config = write_generated_tenant(root / "tenant", end_date=date(2025, 11, 5), days=2, accounts=12)
    (root / "tenant" / "crm").rename(root / "crm_export")
    text = config.read_text()
    assert "source: files" in text and "bulk_threshold: 10000" in text
    config.write_text(
        text.replace("source: files", "source: salesforce").replace("bulk_threshold: 10000", "bulk_threshold: 10")
    )
    return root / "tenant"


@pytest.fixture(scope="module")
def server(stocked):
    """The tenant's CRM in a local Salesforce org, for the module's commands; stopped whatever
    happens. Every account was modified today (so each sync of Account, the incremental one
    too, fetches all 12, through the Bulk API) and one contact is deleted (queryAll returns it,
    no mirror may)."""
    with LocalSalesforceServer() as server:
        server.store.load_csv_exports(stocked.parent / "crm_export")
        for account in server.store.records("Account"):
            server.store.update("Account", account["Id"], {"Name": account["Name"]})
        server.store.delete("Contact", [server.store.records("Contact")[0]["Id"]])
        yield server


def login(server: LocalSalesforceServer) -> dict[str, str]:
    """SalesforceResource's settings for a username/password login to `server` through its proxy."""
    return {
        "username": server.username,
        "password": server.password,
        "security_token": server.security_token,
        "ca_bundle": server.ca_path,
        "proxy": server.proxy_url,
    }


def salesforce_env(server: LocalSalesforceServer) -> dict[str, str]:
    """The same login as the environment of a command (SF_USERNAME, ..., SF_CA_BUNDLE, SF_PROXY)."""
    return {f"SF_{name.upper()}": value for name, value in login(server).items()}


@pytest.fixture(scope="module")
def uninterrupted(server, stocked, tmp_path_factory) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """Every public table and every mirror after the daily commands ran without interruption."""
    root = tmp_path_factory.mktemp("sf_uninterrupted")
    shutil.copytree(stocked, root, dirs_exist_ok=True)
    for command in DAILY_COMMANDS:
        finished = Command(root, *command, extra_env=salesforce_env(server)).wait()
        assert finished.returncode == 0, finished.stderr
    return public_tables(root), mirrors(root)


def mirrors(root: Path) -> dict[str, list[tuple]]:
    """The mirror tables' rows (run_id aside) and the bookmarks (sync time and run_id aside), sorted."""
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        tables = {
            f"salesforce_{name.lower()}": con.execute(
                f"SELECT * EXCLUDE (run_id) FROM salesforce_{name.lower()} ORDER BY ALL"
            ).fetchall()
            for name in OBJECTS
        }
        tables["salesforce_sync"] = con.execute(
            "SELECT object, fields, epoch_ms(bookmark), mode FROM salesforce_sync ORDER BY object"
        ).fetchall()
    return tables


def check_mirrors_match_salesforce(root: Path, server: LocalSalesforceServer) -> list[str]:
    """Each mirror holds the org's live records once, its bookmark is the newest SystemModstamp
    of the object (the deleted record's included), and the Account mirror was written by the
    sync that wrote its bookmark (every Account sync here rewrites every account). A mirror
    without a bookmark must not exist. Returns the objects that have a bookmark."""
    bookmarked = []
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        bookmarks = {
            name: (bookmark, run_id)
            for name, bookmark, run_id in con.execute(
                "SELECT object, epoch_ms(bookmark), run_id FROM salesforce_sync"
            ).fetchall()
        }
        assert len(bookmarks) == con.execute("SELECT count(*) FROM salesforce_sync").fetchone()[0]
        tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for name in OBJECTS:
            table = f"salesforce_{name.lower()}"
            if name not in bookmarks:
                assert table not in tables, f"{table} exists without a bookmark"
                continue
            bookmarked.append(name)
            ids = [record_id for (record_id,) in con.execute(f'SELECT "Id" FROM {table}').fetchall()]
            assert len(ids) == len(set(ids)), f"{table} holds a record twice"
            assert set(ids) == {record["Id"] for record in server.store.records(name)}, f"{table} lost records"
            newest = max(record["SystemModstamp"] for record in server.store.records(name, include_deleted=True))
            bookmark, run_id = bookmarks[name]
            assert bookmark == int(newest.timestamp() * 1000), f"{name}'s bookmark is not its newest record"
            if name == "Account":
                writers = {writer for (writer,) in con.execute(f"SELECT DISTINCT run_id FROM {table}").fetchall()}
                assert writers == {run_id}, f"the Account mirror ({writers}) and its bookmark ({run_id}) part ways"
    return bookmarked


# -- where the command is killed ----------------------------------------------------------------


def wait_for(command: Command, condition: Callable[[], object], what: str, pause: float = 0.005) -> object:
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while not (found := condition()):
        assert command.process.poll() is None, f"the command ended before {what}:\n{command.text()}"
        assert time.monotonic() < deadline, f"no {what} in {COMMAND_TIMEOUT} s:\n{command.text()}"
        time.sleep(pause)
    return found


def account_bulk_job(server: LocalSalesforceServer, incremental: bool) -> int | None:
    """The request-log index of the Bulk job a (full or incremental) Account sync created."""
    for index, entry in enumerate(server.request_log.entries()):
        soql = entry.soql or ""
        if entry.method == "POST" and " FROM Account" in soql and ("WHERE SystemModstamp" in soql) == incremental:
            return index
    return None


def results_after(server: LocalSalesforceServer, index: int) -> list[RecordedRequest]:
    """The job results the server answered after the request at `index`."""
    return [e for e in server.request_log.entries()[index:] if e.path.endswith("/results") and e.status is not None]


def account_step_events(day: str) -> list[str]:
    """The salesforce_account step's events (STEP_START, STEP_SUCCESS, ...) in `day`'s runs."""
    instance = dagster_instance()
    return [
        event.event_log_entry.dagster_event.event_type_value
        for run in instance.get_run_records(dg.RunsFilter(tags={"dagster/asset_partition_range_start": day}))
        for event in instance.get_records_for_run(run.dagster_run.run_id).records
        if event.event_log_entry.is_dagster_event and event.event_log_entry.step_key == "salesforce_account"
    ]


def kill_in_the_account_sync(command: Command, server: LocalSalesforceServer, day: str, incremental: bool) -> None:
    """Kill once the server has the sync's Bulk job, while simple-salesforce waits to ask for its
    state; then check that the job's results were never asked for and, in the instance, that the
    kill landed inside `day`'s salesforce_account step: started, not ended."""
    wait_for(command, lambda: account_bulk_job(server, incremental) is not None, "the Account Bulk job")
    job = account_bulk_job(server, incremental)
    command.kill()
    assert results_after(server, job) == [], "the kill came after the job's results"
    events = account_step_events(day)
    assert "STEP_START" in events, f"no salesforce_account STEP_START on {day}: {events}"
    assert not {"STEP_SUCCESS", "STEP_FAILURE"} & set(events), f"the kill came after the step: {events}"


def in_the_full_sync(command: Command, server: LocalSalesforceServer) -> None:
    """In the first day's Account sync, a full load (no mirror yet), as Salesforce runs its Bulk job."""
    kill_in_the_account_sync(command, server, DAYS[0], incremental=False)


def in_the_incremental_sync(command: Command, server: LocalSalesforceServer) -> None:
    """In the second day's Account sync, incremental (the first day's mirrors committed, in the
    warehouse's log only: the command checkpoints at its end), as Salesforce runs its Bulk job."""
    kill_in_the_account_sync(command, server, DAYS[1], incremental=True)


@pytest.mark.parametrize("kill", [in_the_full_sync, in_the_incremental_sync])
def test_a_daily_command_killed_inside_the_salesforce_sync_is_completed_by_the_next_command(
    kill, server, stocked, uninterrupted, tmp_path, commands, monkeypatch  # noqa: F811
):  # fmt: skip
    shutil.copytree(stocked, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    server.request_log.clear()
    killed_at = 0 if kill is in_the_full_sync else 1
    for command in DAILY_COMMANDS[:killed_at]:
        assert Command(tmp_path, *command, extra_env=salesforce_env(server)).wait().returncode == 0
    killed = Command(tmp_path, *DAILY_COMMANDS[killed_at], extra_env=salesforce_env(server))
    commands.append(killed)
    kill(killed, server)

    # what the kill left: each mirror whole, with the bookmark of the sync that wrote it, or none
    bookmarked = check_mirrors_match_salesforce(tmp_path, server)
    assert ("Account" in bookmarked) == (kill is not in_the_full_sync)

    again = Command(tmp_path, *DAILY_COMMANDS[killed_at], extra_env=salesforce_env(server))
    commands.append(again)
    finished = again.wait()
    assert finished.returncode == 0, finished.stdout
    for command in DAILY_COMMANDS[killed_at + 1 :]:
        assert Command(tmp_path, *command, extra_env=salesforce_env(server)).wait().returncode == 0

    tables, mirrored = uninterrupted
    assert public_tables(tmp_path) == tables
    assert mirrors(tmp_path) == mirrored
    assert check_mirrors_match_salesforce(tmp_path, server) == list(OBJECTS)
    instance = dagster_instance()
    assert instance.get_run_records(dg.RunsFilter(statuses=runs.UNFINISHED)) == [], "a run is still unfinished"
    assert instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots == []
    [failed] = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert any(line.startswith("cs-pipeline: marked 1 run(s)") and failed.dagster_run.run_id[:8] in line
               for _, line in again.lines)  # fmt: skip


# -- the moment between the mirror's write and the bookmark's --------------------------------

# Runs sync_object, unmodified, against the local server and a warehouse, and kills itself
# (SIGKILL) at the line that moves the bookmark: after the mirror's rows were replaced in the
# transaction (which it prints, from inside that transaction), before the bookmark is written.
KILLED_SYNC = """
import json, linecache, os, signal, sys
from cs_pipeline.crm.salesforce_extraction import SalesforceResource, mirror_table, sync_object
from cs_pipeline.warehouse import connect

args = json.loads(sys.argv[1])
table = mirror_table(args["object"])

def at_the_bookmark(frame, event, arg):
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    if event == "line" and "DELETE FROM salesforce_sync" in line:
        con = frame.f_locals["con"]
        written = con.execute(f'SELECT "Id", run_id FROM {table}').fetchall()
        print(json.dumps(written), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return at_the_bookmark

def tracer(frame, event, arg):
    return at_the_bookmark if frame.f_code is sync_object.__code__ else None

con = connect(args["warehouse"])
connection = SalesforceResource(**args["resource"]).open()
sys.settrace(tracer)
sync_object(connection, con, object_name=args["object"], fields=args["fields"], optional_fields=[],
            overlap_minutes=10, full_refresh=args["full_refresh"], run_id="killed")
"""

ACCOUNT_FIELDS = ["Id", "External_Id__c", "Name", "ParentId", "Status__c"]


def killed_at_the_bookmark(server, warehouse: Path, full_refresh: bool) -> list[list[str]]:
    """The mirror's rows (Id, run_id) the killed sync had written in its transaction."""
    arguments = {
        "warehouse": str(warehouse),
        "resource": login(server),
        "object": "Account",
        "fields": ACCOUNT_FIELDS,
        "full_refresh": full_refresh,
    }
    killed = processes.run([sys.executable, "-c", KILLED_SYNC, json.dumps(arguments)], timeout=COMMAND_TIMEOUT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return json.loads(killed.stdout)


def sync_in_process(server, warehouse: Path, run_id: str) -> None:
    resource = SalesforceResource(**login(server))
    con = connect(warehouse)
    try:
        sync_object(
            resource.open(), con, object_name="Account", fields=ACCOUNT_FIELDS, optional_fields=[],
            overlap_minutes=10, full_refresh=False, run_id=run_id,
        )  # fmt: skip
    finally:
        con.close()


def account_mirror(warehouse: Path) -> tuple[list[tuple], list[tuple]]:
    """The Account mirror's rows and its bookmark row (synced_at aside)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT * FROM salesforce_account ORDER BY ALL").fetchall()
        bookmark = con.execute(
            "SELECT object, fields, bookmark, mode, run_id FROM salesforce_sync WHERE object = 'Account'"
        ).fetchall()
    return rows, bookmark


def test_a_sync_killed_between_the_mirror_write_and_the_bookmark_leaves_both_as_they_were(stocked, tmp_path):
    """Incremental and full refresh: the mirror's rows and the bookmark commit in one transaction,
    so a kill between the two writes loses the first with the second, and the next sync brings
    the mirror to Salesforce's records, each once."""
    warehouse = tmp_path / "warehouse.duckdb"
    with LocalSalesforceServer() as server:
        server.store.load_csv_exports(stocked.parent / "crm_export")
        sync_in_process(server, warehouse, run_id="first")
        before = account_mirror(warehouse)
        live = sorted(record["Id"] for record in server.store.records("Account"))
        updated, deleted = live[:2]
        server.store.update("Account", updated, {"Name": "Renamed Ltd"})
        server.store.delete("Account", [deleted])
        [inserted] = server.store.insert("Account", [{"External_Id__c": "NEW-1", "Name": "Newco"}])
        expected = {*live, inserted} - {deleted}
        # what an incremental sync fetches again: the changes, and what the overlap re-reads
        [(_, _, first_bookmark, _, _)] = before[1]
        since = first_bookmark - timedelta(minutes=10)
        changed = {r["Id"] for r in server.store.records("Account") if r["SystemModstamp"] >= since}
        assert {updated, inserted} <= changed < expected

        for full_refresh in (False, True):
            written = killed_at_the_bookmark(server, warehouse, full_refresh)
            # inside the transaction, the mirror already held the new records ...
            assert {record_id for record_id, _ in written} == expected
            assert {record_id for record_id, run_id in written if run_id == "killed"} == (
                expected if full_refresh else changed
            )
            # ... and after the kill, mirror and bookmark are those of the last sync that committed
            assert account_mirror(warehouse) == before

        sync_in_process(server, warehouse, run_id="after")
        rows, [bookmark] = account_mirror(warehouse)
        assert sorted(row[0] for row in rows) == sorted(expected)
        assert rows == sorted({row for row in rows})  # no record twice
        assert [row[4] for row in rows if row[0] == updated] == ["Renamed Ltd"]
        assert bookmark[2] == max(r["SystemModstamp"] for r in server.store.records("Account", include_deleted=True))
