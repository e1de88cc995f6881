"""Ingesting one day's delivery of usage events (docs/data-model.md#usage-events-landing-zone;
tables: docs/data-model.md#public-tables).

Every test writes a small delivery into tmp_path by hand and checks the exact rows the
warehouse holds afterwards: `usage_events` (one row per event_id, the earliest delivery
wins), `usage_event_copies` (later deliveries of a stored event_id), `rejected_events`
(reason and the delivered values as `raw`) and the counts of the `IngestResult`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import cs_pipeline.usage.ingest as ingest_module
from cs_pipeline.usage.ingest import IngestResult, duplicate_event_ids, ingest_delivery
from cs_pipeline.usage.landing import LandingFileError
from cs_pipeline.warehouse import connect

D = date(2025, 11, 21)
D_NEXT = D + timedelta(days=1)
D_PREV = D - timedelta(days=1)

NO_REJECTS = {
    "malformed_row": 0, "bad_type": 0, "field_too_long": 0, "missing_account_id": 0, "missing_action": 0,
    "bad_timestamp": 0, "future_timestamp": 0, "module_limit": 0, "action_limit": 0,
}  # fmt: skip

EVENT_COLUMNS = "event_id, ts, event_date, account_id, user_id, module, action, partition_date, source_file, source_row"


# --------------------------------------------------------------------------- fixtures (landing, con: conftest.py)


@pytest.fixture
def open_warehouse(tmp_path: Path):
    """Opens further warehouses in tmp_path by name (to compare orders of materialisation)."""
    opened = []

    def open_(name: str):
        opened.append(connect(tmp_path / f"{name}.duckdb"))
        return opened[-1]

    yield open_
    for connection in opened:
        connection.close()


# --------------------------------------------------------------------------- deliveries


def day_folder(landing: Path, day: date) -> Path:
    folder = landing / "usage" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_csv(landing: Path, day: date, name: str, text: str) -> Path:
    """A CSV file with exactly this text (dedented; spaces inside values are kept)."""
    path = day_folder(landing, day) / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def write_jsonl(landing: Path, day: date, name: str, lines: list[dict | str]) -> Path:
    """One line per item: a dict as JSON, a str as it is; gzip-compressed for *.jsonl.gz."""
    text = "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    path = day_folder(landing, day) / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_parquet(landing: Path, day: date, name: str, frame: pl.DataFrame) -> Path:
    path = day_folder(landing, day) / name
    frame.write_parquet(path)
    return path


def clear_day(landing: Path, day: date) -> None:
    shutil.rmtree(day_folder(landing, day))


# --------------------------------------------------------------------------- running and reading


def ingest(
    con, landing: Path, day: date, *, modules: int = 100, actions: int = 500, run_id: str = "run-1"
) -> IngestResult:
    return ingest_delivery(
        con, landing=landing, partition_date=day, module_limit=modules, action_limit=actions, run_id=run_id
    )


def utc(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def stored_events(con) -> list[tuple]:
    """usage_events without run_id, in delivery order."""
    return con.execute(
        f"SELECT {EVENT_COLUMNS} FROM usage_events ORDER BY partition_date, source_file, source_row"
    ).fetchall()


def stored_copies(con) -> list[tuple]:
    return con.execute(
        f"SELECT {EVENT_COLUMNS} FROM usage_event_copies ORDER BY partition_date, source_file, source_row"
    ).fetchall()


def rejected_rows(con) -> list[tuple]:
    """rejected_events without run_id, raw parsed from JSON."""
    rows = con.execute(
        "SELECT partition_date, source_file, source_row, reason, raw::VARCHAR FROM rejected_events "
        "ORDER BY partition_date, source_file, source_row"
    ).fetchall()
    return [(*row[:4], None if row[4] is None else json.loads(row[4])) for row in rows]


def rejected_keys(con) -> list[tuple]:
    """rejected_events without raw and run_id."""
    return [row[:4] for row in rejected_rows(con)]


def warehouse_state(con) -> dict[str, list[tuple]]:
    """Every table ingestion writes, run_id left out, rows sorted."""
    return {
        "usage_events": con.execute("SELECT * EXCLUDE (run_id) FROM usage_events ORDER BY ALL").fetchall(),
        "usage_event_copies": con.execute("SELECT * EXCLUDE (run_id) FROM usage_event_copies ORDER BY ALL").fetchall(),
        "rejected_events": con.execute(
            "SELECT * EXCLUDE (run_id) REPLACE (raw::VARCHAR AS raw) FROM rejected_events ORDER BY ALL"
        ).fetchall(),
        "usage_vocabulary": con.execute("SELECT * FROM usage_vocabulary ORDER BY ALL").fetchall(),
    }


def hashed_id(ts_utc: str, account_id: str, user_id: str | None, module: str | None, action: str) -> str:
    """The event_id of a row delivered without one: md5 of the JSON list of its normalised
    fields, ts as a UTC instant with microseconds."""
    return hashlib.md5(
        json.dumps([ts_utc, account_id, user_id, module, action], separators=(",", ":")).encode()
    ).hexdigest()


def event(event_id, ts, account_id, user_id, module, action, partition_date, source_file, source_row) -> tuple:
    """An expected usage_events row (event_date = the UTC date of ts)."""
    return (event_id, ts, ts.date(), account_id, user_id, module, action, partition_date, source_file, source_row)


def csv_raw(event_id=None, ts=None, account_id=None, user_id=None, module=None, action=None) -> dict:
    """`raw` of a rejected tabular row: the six columns as delivered (absent ones null)."""
    return {
        "event_id": event_id,
        "ts": ts,
        "account_id": account_id,
        "user_id": user_id,
        "module": module,
        "action": action,
    }


# --------------------------------------------------------------------------- 1. formats and normalisation


def test_all_four_formats_are_read_with_file_and_row_and_normalised_values(con, landing):
    write_parquet(
        landing, D, "a.parquet",
        pl.DataFrame({
            "event_id": ["p-1", " p-2 "],
            "ts": [datetime(2025, 11, 21, 9, 0), datetime(2025, 11, 21, 9, 30)],
            "account_id": [" ACC-1 ", "ACC-2"],
            "user_id": ["Ann@Example.COM", "U-Mixed"],
            "module": ["Billing", "   "],
            "action": ["view", " edit "],
        }),
    )  # fmt: skip
    write_jsonl(landing, D, "b.jsonl", [
        {"event_id": "j-1", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "user_id": " Bob@X.IO ",
         "module": "", "action": "export"},
        "",  # a blank line: skipped, the next line keeps its line number
        {"event_id": "j-3", "ts": " 2025-11-21T10:30:00Z ", "account_id": "ACC-2", "user_id": "   ",
         "module": "Reports", "action": "view"},
    ])  # fmt: skip
    write_jsonl(landing, D, "c.jsonl.gz", [
        {"event_id": "g-1", "ts": "2025-11-21T11:00:00Z", "account_id": "ACC-3", "user_id": "Id-42",
         "module": "Clients", "action": "create"},
    ])  # fmt: skip
    # header in other case and with spaces; no event_id and no module column
    write_csv(
        landing,
        D,
        "d.csv",
        """\
         Account_ID ,TS , User_Id,ACTION
         ACC-3 ,2025-11-21T12:00:00Z, Carol@Example.com ,login
        ACC-4,2025-11-21T12:30:00Z,,logout
        """,
    )

    result = ingest(con, landing, D)

    assert stored_events(con) == [
        event("p-1", utc(D, 9), "ACC-1", "ann@example.com", "Billing", "view", D, "a.parquet", 1),
        event("p-2", utc(D, 9, 30), "ACC-2", "U-Mixed", None, "edit", D, "a.parquet", 2),
        event("j-1", utc(D, 10), "ACC-1", "bob@x.io", None, "export", D, "b.jsonl", 1),
        event("j-3", utc(D, 10, 30), "ACC-2", None, "Reports", "view", D, "b.jsonl", 3),
        event("g-1", utc(D, 11), "ACC-3", "Id-42", "Clients", "create", D, "c.jsonl.gz", 1),
        event(hashed_id("2025-11-21T12:00:00.000000Z", "ACC-3", "carol@example.com", None, "login"),
              utc(D, 12), "ACC-3", "carol@example.com", None, "login", D, "d.csv", 1),
        event(hashed_id("2025-11-21T12:30:00.000000Z", "ACC-4", None, None, "logout"),
              utc(D, 12, 30), "ACC-4", None, None, "logout", D, "d.csv", 2),
    ]  # fmt: skip
    assert stored_copies(con) == []
    assert rejected_rows(con) == []
    assert result == IngestResult(
        partition_date=D, files=4, files_ignored=[], rows_read=7, events_stored=7, duplicates=0,
        purged_by_retention=0, late_events=0, rejected=NO_REJECTS, moved_beyond_limits=0,
    )  # fmt: skip


def test_ids_are_case_sensitive_and_user_ids_without_at_sign_keep_their_case(con, landing):
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,action
        E-1,2025-11-21T08:00:00Z,acc-1,Admin-7,view
        e-1,2025-11-21T08:00:00Z,ACC-1,ADMIN@CORP.EXAMPLE,view
        """,
    )

    ingest(con, landing, D)

    assert con.execute("SELECT event_id, account_id, user_id FROM usage_events ORDER BY source_row").fetchall() == [
        ("E-1", "acc-1", "Admin-7"),
        ("e-1", "ACC-1", "admin@corp.example"),
    ]


# --------------------------------------------------------------------------- 2. rejected rows


def test_each_reject_reason_names_its_row_and_keeps_the_delivered_values(con, landing):
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,module,action
        r-1,2025-11-21T08:00:00Z,,u1,Billing,view
        r-2,2025-11-21T08:00:00Z,  ,u1,Billing,view
        r-3,2025-11-21T08:00:00Z,ACC-1,u1,Billing,"   "
        r-4,,ACC-1,u1,Billing,view
        r-5,21/11/2025 08:00,ACC-1,u1,Billing,view
        r-6,2025-11-22T23:59:59Z,ACC-1,u1,Billing,view
        r-7,2025-11-23T00:00:00Z,ACC-1,u1,Billing,view
        r-8, 2025-11-21T09:00:00Z ,ACC-1,u1,Billing,view
        """,
    )
    write_jsonl(landing, D, "b.jsonl", [
        {"event_id": "j-1", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "action": "view"},
        "not json at all",
        '["a", "list"]',
        {"event_id": "j-4", "account_id": "ACC-1", "action": "view"},
        '{"event_id": "j-5", "ts": "2025-11-21T10:00:00Z"',
    ])  # fmt: skip

    result = ingest(con, landing, D)

    assert rejected_rows(con) == [
        (D, "a.csv", 1, "missing_account_id", csv_raw("r-1", "2025-11-21T08:00:00Z", None, "u1", "Billing", "view")),
        (D, "a.csv", 2, "missing_account_id", csv_raw("r-2", "2025-11-21T08:00:00Z", "  ", "u1", "Billing", "view")),
        (D, "a.csv", 3, "missing_action", csv_raw("r-3", "2025-11-21T08:00:00Z", "ACC-1", "u1", "Billing", "   ")),
        (D, "a.csv", 4, "bad_timestamp", csv_raw("r-4", None, "ACC-1", "u1", "Billing", "view")),
        (D, "a.csv", 5, "bad_timestamp", csv_raw("r-5", "21/11/2025 08:00", "ACC-1", "u1", "Billing", "view")),
        (D, "a.csv", 7, "future_timestamp", csv_raw("r-7", "2025-11-23T00:00:00Z", "ACC-1", "u1", "Billing", "view")),
        (D, "b.jsonl", 2, "malformed_row", "not json at all"),
        (D, "b.jsonl", 3, "malformed_row", '["a", "list"]'),
        (D, "b.jsonl", 4, "bad_timestamp", {"event_id": "j-4", "account_id": "ACC-1", "action": "view"}),
        (D, "b.jsonl", 5, "malformed_row", '{"event_id": "j-5", "ts": "2025-11-21T10:00:00Z"'),
    ]  # fmt: skip
    # D+1 23:59:59 is the last accepted instant; the trimmed ts of r-8 parses
    assert stored_events(con) == [
        event("r-6", utc(D_NEXT, 23, 59, 59), "ACC-1", "u1", "Billing", "view", D, "a.csv", 6),
        event("r-8", utc(D, 9), "ACC-1", "u1", "Billing", "view", D, "a.csv", 8),
        event("j-1", utc(D, 10), "ACC-1", None, None, "view", D, "b.jsonl", 1),
    ]  # fmt: skip
    assert result.rejected == {
        **NO_REJECTS, "malformed_row": 3, "missing_account_id": 2, "missing_action": 1, "bad_timestamp": 3,
        "future_timestamp": 1,
    }  # fmt: skip
    assert (result.rows_read, result.rows_rejected, result.events_stored) == (13, 10, 3)


def test_rejected_parquet_row_keeps_its_timestamp_as_utc_text(con, landing):
    write_parquet(
        landing, D, "a.parquet",
        pl.DataFrame({"ts": [datetime(2025, 11, 21, 8, 15)], "account_id": ["ACC-1"], "action": [None]},
                     schema_overrides={"action": pl.String}),
    )  # fmt: skip

    result = ingest(con, landing, D)

    assert rejected_rows(con) == [
        (D, "a.parquet", 1, "missing_action", csv_raw(None, "2025-11-21T08:15:00.000000Z", "ACC-1")),
    ]
    assert result.rejected == {**NO_REJECTS, "missing_action": 1}


@pytest.mark.parametrize("text", ["epoch", "infinity", "-infinity"])
def test_non_iso_timestamp_words_are_rejected_as_bad_timestamp(con, landing, text):
    write_csv(
        landing,
        D,
        "a.csv",
        f"event_id,ts,account_id,action\nx-1,{text},ACC-1,view\ny-1,2025-11-21T08:00:00Z,ACC-1,view\n",
    )

    result = ingest(con, landing, D)

    assert rejected_keys(con) == [(D, "a.csv", 1, "bad_timestamp")]
    assert [row[0] for row in stored_events(con)] == ["y-1"]
    assert result.rejected == {**NO_REJECTS, "bad_timestamp": 1}


# --------------------------------------------------------------------------- 2b. per-tenant limits

LIMITS = {"modules": 2, "actions": 3}


def write_limit_days(landing: Path, *, late_billing_view: bool = False) -> None:
    """D-1 brings modules Billing, Admin and actions view, edit late on 2025-11-20.
    D brings Clients at 2025-11-20 08:00 (earlier ts than anything of D-1, but a later
    delivery day), then actions export (09:00) and delete (08:00, a later row)."""
    write_csv(
        landing,
        D_PREV,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,module,action
        e1,2025-11-20T20:00:00Z,ACC-1,u1,Billing,view
        e2,2025-11-20T21:00:00Z,ACC-1,u1,Admin,edit
        """,
    )
    text = """\
        event_id,ts,account_id,user_id,module,action
        e3,2025-11-20T08:00:00Z,ACC-1,u1,Clients,view
        e4,2025-11-21T09:00:00Z,ACC-1,u1,,export
        e5,2025-11-21T08:00:00Z,ACC-1,u1,Admin,delete
        """
    if late_billing_view:
        text += "        e6,2025-11-21T10:00:00Z,ACC-1,u1,Billing,view\n"
    write_csv(landing, D, "a.csv", text)


def test_limits_admit_the_first_values_by_first_delivery_day_then_ts(con, landing):
    write_limit_days(landing, late_billing_view=True)

    first = ingest(con, landing, D_PREV, **LIMITS)
    second = ingest(con, landing, D, **LIMITS)

    # modules: Billing, Admin (D-1) beat Clients (earlier ts, but delivered on D);
    # actions: view, edit (D-1), then delete (08:00) before export (09:00) on D.
    # A limit rejection was a valid event: its raw is the normalised event (ts in UTC, microseconds).
    assert rejected_rows(con) == [
        (D, "a.csv", 1, "module_limit", csv_raw("e3", "2025-11-20T08:00:00.000000Z", "ACC-1", "u1", "Clients", "view")),
        (D, "a.csv", 2, "action_limit", csv_raw("e4", "2025-11-21T09:00:00.000000Z", "ACC-1", "u1", None, "export")),
    ]  # fmt: skip
    assert [row[0] for row in stored_events(con)] == ["e1", "e2", "e5", "e6"]
    assert first.rejected == NO_REJECTS
    assert second.rejected == {**NO_REJECTS, "module_limit": 1, "action_limit": 1}
    assert (second.rows_read, second.events_stored, second.moved_beyond_limits) == (4, 2, 0)


def test_limits_out_of_order_store_and_reject_the_same_rows_as_in_order(open_warehouse, landing):
    write_limit_days(landing)
    in_order = open_warehouse("in_order")
    ingest(in_order, landing, D_PREV, **LIMITS)
    ingest(in_order, landing, D, **LIMITS)
    reverse = open_warehouse("reverse")
    alone = ingest(reverse, landing, D, **LIMITS)
    late = ingest(reverse, landing, D_PREV, **LIMITS)

    # D alone fits the limits; D-1 arriving later pushes Clients (e3) and export (e4) out
    assert alone.rejected == NO_REJECTS
    assert late.moved_beyond_limits == 2
    assert (
        rejected_keys(reverse)
        == rejected_keys(in_order)
        == [
            (D, "a.csv", 1, "module_limit"),
            (D, "a.csv", 2, "action_limit"),
        ]
    )
    assert stored_events(reverse) == stored_events(in_order)
    assert [row[0] for row in stored_events(in_order)] == ["e1", "e2", "e5"]
    assert stored_copies(reverse) == stored_copies(in_order) == []


def test_limits_out_of_order_rejected_raw_is_the_same_as_in_order(open_warehouse, landing):
    write_limit_days(landing)
    in_order = open_warehouse("in_order")
    ingest(in_order, landing, D_PREV, **LIMITS)
    ingest(in_order, landing, D, **LIMITS)
    reverse = open_warehouse("reverse")
    ingest(reverse, landing, D, **LIMITS)
    ingest(reverse, landing, D_PREV, **LIMITS)

    assert rejected_rows(reverse) == rejected_rows(in_order)


def test_limits_out_of_order_give_the_same_final_state_as_in_order(open_warehouse, landing):
    write_limit_days(landing, late_billing_view=True)
    in_order = open_warehouse("in_order")
    ingest(in_order, landing, D_PREV, **LIMITS)
    ingest(in_order, landing, D, **LIMITS)
    reverse = open_warehouse("reverse")
    ingest(reverse, landing, D, **LIMITS)  # alone: Clients, Admin fill the modules; e6 (Billing) rejected
    ingest(reverse, landing, D_PREV, **LIMITS)

    assert stored_events(reverse) == stored_events(in_order)
    assert rejected_keys(reverse) == rejected_keys(in_order)


def test_limits_out_of_order_also_reject_later_copies_of_an_event_beyond_them(open_warehouse, landing):
    write_limit_days(landing)
    write_csv(
        landing,
        D_NEXT,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,module,action
        e4,2025-11-21T09:00:00Z,ACC-1,u1,,export
        """,
    )
    in_order = open_warehouse("in_order")
    for day in (D_PREV, D, D_NEXT):
        ingest(in_order, landing, day, **LIMITS)
    reverse = open_warehouse("reverse")
    for day in (D, D_NEXT, D_PREV):
        ingest(reverse, landing, day, **LIMITS)

    assert rejected_keys(in_order) == [
        (D, "a.csv", 1, "module_limit"),
        (D, "a.csv", 2, "action_limit"),
        (D_NEXT, "a.csv", 1, "action_limit"),
    ]
    assert stored_copies(reverse) == stored_copies(in_order) == []
    assert rejected_keys(reverse) == rejected_keys(in_order)


# --------------------------------------------------------------------------- 3. timestamps


def test_timestamps_become_utc_instants_and_the_event_day_is_the_utc_date(con, landing):
    write_jsonl(landing, D, "a.jsonl", [
        {"event_id": "t-1", "ts": "2025-11-21T23:30:00-05:00", "account_id": "ACC-1", "action": "view"},
        {"event_id": "t-2", "ts": "2025-11-21T10:00:00", "account_id": "ACC-1", "action": "view"},
        {"event_id": "t-3", "ts": "2025-11-19T12:00:00Z", "account_id": "ACC-1", "action": "view"},
    ])  # fmt: skip
    write_parquet(
        landing, D, "b.parquet",
        pl.DataFrame({"event_id": ["t-4"], "ts": [datetime(2025, 11, 21, 23, 0)], "account_id": ["ACC-1"],
                      "action": ["view"]}),
    )  # fmt: skip
    zoned = pl.DataFrame(
        {"event_id": ["t-5"], "ts": [datetime(2025, 11, 21, 20, 0)], "account_id": ["ACC-1"], "action": ["view"]}
    ).with_columns(pl.col("ts").dt.replace_time_zone("America/New_York"))
    write_parquet(landing, D, "c.parquet", zoned)

    result = ingest(con, landing, D)

    assert con.execute("SELECT event_id, ts, event_date FROM usage_events ORDER BY event_id").fetchall() == [
        ("t-1", utc(D_NEXT, 4, 30), D_NEXT),  # -05:00 evening: next UTC day, still accepted (D+1)
        ("t-2", utc(D, 10), D),  # no offset: UTC
        ("t-3", utc(date(2025, 11, 19), 12), date(2025, 11, 19)),  # late: its own day
        ("t-4", utc(D, 23), D),  # parquet timestamp without zone: UTC
        ("t-5", utc(D_NEXT, 1), D_NEXT),  # 20:00 New York (EST) = 01:00 UTC next day
    ]
    assert con.execute("SELECT DISTINCT partition_date FROM usage_events").fetchall() == [(D,)]
    assert (result.events_stored, result.late_events, result.rejected) == (5, 1, NO_REJECTS)


# --------------------------------------------------------------------------- 4. hashed event_id


def test_event_without_id_hashes_the_same_from_csv_text_and_parquet_timestamp(con, landing):
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        ts,account_id,user_id,module,action
        2025-11-21T10:00:00+01:00, ACC-1 ,Ann@Example.com,Billing,view
        """,
    )
    write_parquet(
        landing, D_NEXT, "b.parquet",
        pl.DataFrame({"ts": [datetime(2025, 11, 21, 9, 0)], "account_id": ["ACC-1"], "user_id": ["ann@example.com"],
                      "module": ["Billing"], "action": ["view"]}),
    )  # fmt: skip

    ingest(con, landing, D)
    result = ingest(con, landing, D_NEXT)

    event_id = hashed_id("2025-11-21T09:00:00.000000Z", "ACC-1", "ann@example.com", "Billing", "view")
    assert stored_events(con) == [
        event(event_id, utc(D, 9), "ACC-1", "ann@example.com", "Billing", "view", D, "a.csv", 1)
    ]
    assert stored_copies(con) == [
        event(event_id, utc(D, 9), "ACC-1", "ann@example.com", "Billing", "view", D_NEXT, "b.parquet", 1)
    ]
    assert (result.events_stored, result.duplicates) == (0, 1)


def test_blank_event_id_is_hashed_and_different_fields_give_different_ids(con, landing):
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,module,action
           ,2025-11-21T10:00:00Z,ACC-1,,,view
        ,2025-11-21T10:00:00Z,ACC-1,,,edit
        """,
    )

    ingest(con, landing, D)

    assert [row[0] for row in stored_events(con)] == [
        hashed_id("2025-11-21T10:00:00.000000Z", "ACC-1", None, None, "view"),
        hashed_id("2025-11-21T10:00:00.000000Z", "ACC-1", None, None, "edit"),
    ]


# --------------------------------------------------------------------------- 5. dedupe across and within days


def write_two_days_with_a_shared_event(landing: Path) -> None:
    """X is delivered on D (user u1) and again on D+1 (user u2); Y only on D+1."""
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,action
        X,2025-11-21T10:00:00Z,ACC-1,u1,view
        """,
    )
    write_csv(
        landing,
        D_NEXT,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,action
        Y,2025-11-22T08:00:00Z,ACC-1,u3,edit
        X,2025-11-21T10:00:00Z,ACC-1,u2,view
        """,
    )


def test_event_delivered_on_two_days_is_stored_once_from_the_earlier_day(con, landing):
    write_two_days_with_a_shared_event(landing)

    ingest(con, landing, D)
    result = ingest(con, landing, D_NEXT)

    assert stored_events(con) == [
        event("X", utc(D, 10), "ACC-1", "u1", None, "view", D, "a.csv", 1),
        event("Y", utc(D_NEXT, 8), "ACC-1", "u3", None, "edit", D_NEXT, "a.csv", 1),
    ]
    assert stored_copies(con) == [event("X", utc(D, 10), "ACC-1", "u2", None, "view", D_NEXT, "a.csv", 2)]
    assert (result.rows_read, result.events_stored, result.duplicates, result.late_events) == (2, 1, 1, 0)


def test_days_materialised_in_reverse_give_the_same_tables(open_warehouse, landing):
    write_two_days_with_a_shared_event(landing)
    in_order = open_warehouse("in_order")
    ingest(in_order, landing, D, run_id="a")
    ingest(in_order, landing, D_NEXT, run_id="b")
    reverse = open_warehouse("reverse")
    alone = ingest(reverse, landing, D_NEXT, run_id="c")
    assert (alone.events_stored, alone.duplicates) == (2, 0)  # X is D+1's until D arrives
    ingest(reverse, landing, D, run_id="d")

    assert warehouse_state(reverse) == warehouse_state(in_order)
    assert [(row[0], row[7]) for row in stored_events(reverse)] == [("X", D), ("Y", D_NEXT)]


def test_within_a_day_the_earlier_file_name_then_the_earlier_row_wins(con, landing):
    write_jsonl(landing, D, "a.jsonl", [
        "",
        {"event_id": "X", "ts": "2025-11-21T12:00:00Z", "account_id": "ACC-1", "user_id": "a-2", "action": "view"},
        {"event_id": "X", "ts": "2025-11-21T12:00:00Z", "account_id": "ACC-1", "user_id": "a-3", "action": "view"},
    ])  # fmt: skip
    # a later file name with an earlier ts: ts does not decide, the delivery order does
    write_csv(
        landing,
        D,
        "b.csv",
        """\
        event_id,ts,account_id,user_id,action
        X,2025-11-21T08:00:00Z,ACC-1,b-1,view
        """,
    )

    result = ingest(con, landing, D)

    assert stored_events(con) == [event("X", utc(D, 12), "ACC-1", "a-2", None, "view", D, "a.jsonl", 2)]
    assert stored_copies(con) == [
        event("X", utc(D, 12), "ACC-1", "a-3", None, "view", D, "a.jsonl", 3),
        event("X", utc(D, 8), "ACC-1", "b-1", None, "view", D, "b.csv", 1),
    ]
    assert (result.rows_read, result.events_stored, result.duplicates) == (3, 1, 2)


# --------------------------------------------------------------------------- 6. re-runs and re-deliveries


def test_ingesting_the_same_day_twice_changes_nothing_but_the_run_id(con, landing):
    write_two_days_with_a_shared_event(landing)
    write_csv(
        landing,
        D,
        "b.csv",
        """\
        event_id,ts,account_id,action
        R,not a time,ACC-1,view
        """,
    )
    first_d = ingest(con, landing, D, run_id="run-1")
    ingest(con, landing, D_NEXT, run_id="run-1")
    before = warehouse_state(con)

    again_d = ingest(con, landing, D, run_id="run-2")
    ingest(con, landing, D_NEXT, run_id="run-2")

    assert warehouse_state(con) == before
    assert again_d == first_d
    assert con.execute(
        "SELECT DISTINCT run_id FROM (SELECT run_id FROM usage_events UNION ALL SELECT run_id FROM rejected_events "
        "UNION ALL SELECT run_id FROM usage_event_copies)"
    ).fetchall() == [("run-2",)]


def test_redelivered_day_without_an_event_hands_it_to_the_later_copy(con, landing):
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,action
        X,2025-11-21T10:00:00Z,ACC-1,u1,view
        Y,2025-11-21T11:00:00Z,ACC-1,u1,edit
        """,
    )
    write_csv(
        landing,
        D_NEXT,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,action
        Z,2025-11-22T09:00:00Z,ACC-1,u2,view
        Y,2025-11-21T11:00:00Z,ACC-1,u2,edit
        """,
    )
    ingest(con, landing, D)
    ingest(con, landing, D_NEXT)

    clear_day(landing, D)
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,user_id,action
        X,2025-11-21T10:00:00Z,ACC-1,u1,view
        """,
    )
    result = ingest(con, landing, D, run_id="run-2")

    assert stored_events(con) == [
        event("X", utc(D, 10), "ACC-1", "u1", None, "view", D, "a.csv", 1),
        event("Z", utc(D_NEXT, 9), "ACC-1", "u2", None, "view", D_NEXT, "a.csv", 1),
        event("Y", utc(D, 11), "ACC-1", "u2", None, "edit", D_NEXT, "a.csv", 2),
    ]
    assert stored_copies(con) == []
    assert (result.rows_read, result.events_stored, result.duplicates) == (1, 1, 0)


def test_redelivered_empty_day_removes_its_rows_and_rejections(con, landing):
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,action
        X,2025-11-21T10:00:00Z,ACC-1,view
        R,2025-11-21T10:00:00Z,,view
        """,
    )
    ingest(con, landing, D)
    clear_day(landing, D)
    day_folder(landing, D)

    result = ingest(con, landing, D)

    assert warehouse_state(con) == {
        "usage_events": [],
        "usage_event_copies": [],
        "rejected_events": [],
        "usage_vocabulary": [],
    }
    assert (result.files, result.rows_read, result.events_stored) == (0, 0, 0)


# --------------------------------------------------------------------------- 7. empty days, stray files, errors


@pytest.mark.parametrize("folder_exists", [False, True], ids=["missing_folder", "empty_folder"])
def test_day_without_files_ingests_nothing(con, landing, folder_exists):
    if folder_exists:
        day_folder(landing, D)

    result = ingest(con, landing, D)

    assert result == IngestResult(
        partition_date=D, files=0, files_ignored=[], rows_read=0, events_stored=0, duplicates=0,
        purged_by_retention=0, late_events=0, rejected=NO_REJECTS, moved_beyond_limits=0,
    )  # fmt: skip
    assert stored_events(con) == []
    assert rejected_rows(con) == []


def test_files_of_other_kinds_are_listed_as_ignored(con, landing):
    write_csv(
        landing,
        D,
        "a.csv",
        """\
        event_id,ts,account_id,action
        X,2025-11-21T10:00:00Z,ACC-1,view
        """,
    )
    folder = day_folder(landing, D)
    (folder / "_SUCCESS").write_text("")
    (folder / "b.csv.tmp").write_text("event_id,ts,account_id,action\nY,2025-11-21T10:00:00Z,ACC-1,view\n")
    (folder / "subdir").mkdir()

    result = ingest(con, landing, D)

    assert result.files_ignored == ["_SUCCESS", "b.csv.tmp", "subdir"]
    assert (result.files, result.rows_read) == (1, 1)
    assert [row[0] for row in stored_events(con)] == ["X"]


def test_header_only_csv_ingests_nothing(con, landing):
    write_csv(landing, D, "a.csv", "event_id,ts,account_id,action\n")

    result = ingest(con, landing, D)

    assert (result.files, result.rows_read, result.events_stored) == (1, 0, 0)


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz"])
def test_empty_jsonl_file_ingests_nothing(con, landing, name):
    write_jsonl(landing, D, name, [])

    result = ingest(con, landing, D)

    assert (result.files, result.rows_read, result.events_stored) == (1, 0, 0)


def test_unreadable_parquet_raises_an_error_naming_the_file(con, landing):
    (day_folder(landing, D) / "broken.parquet").write_bytes(b"this is not parquet")

    with pytest.raises(LandingFileError, match=r"broken\.parquet"):
        ingest(con, landing, D)


def test_failed_ingest_leaves_the_warehouse_unchanged(con, landing):
    write_two_days_with_a_shared_event(landing)
    write_csv(landing, D, "b.csv", "event_id,ts,account_id,action\nR,never,ACC-1,view\n")
    ingest(con, landing, D)
    ingest(con, landing, D_NEXT)
    before = warehouse_state(con)

    (day_folder(landing, D) / "c.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(LandingFileError, match=r"c\.parquet"):
        ingest(con, landing, D, run_id="run-2")
    assert warehouse_state(con) == before


def test_failure_inside_the_transaction_rolls_everything_back(con, landing, monkeypatch):
    write_two_days_with_a_shared_event(landing)
    ingest(con, landing, D)
    ingest(con, landing, D_NEXT)
    before = warehouse_state(con)
    # a re-delivery of D that would release X to D+1's copy and add a rejection
    clear_day(landing, D)
    write_csv(landing, D, "a.csv", "event_id,ts,account_id,action\nW,2025-11-21T10:00:00Z,,view\n")

    def fail(*_args, **_kwargs):
        raise RuntimeError("summary exploded")

    monkeypatch.setattr(ingest_module, "_summarise", fail)  # the last step before commit
    with pytest.raises(RuntimeError, match="summary exploded"):
        ingest(con, landing, D, run_id="run-2")

    assert warehouse_state(con) == before
    monkeypatch.undo()
    ingest(con, landing, D, run_id="run-3")  # the connection is usable again
    assert [(row[0], row[7], row[9]) for row in stored_events(con)] == [("Y", D_NEXT, 1), ("X", D_NEXT, 2)]


def test_duplicate_event_ids_finds_only_ids_stored_twice_in_the_partition(con, landing):
    write_two_days_with_a_shared_event(landing)
    ingest(con, landing, D)
    ingest(con, landing, D_NEXT)
    assert duplicate_event_ids(con, D) == [] and duplicate_event_ids(con, D_NEXT) == []
    # what the blocking check guards against: a second stored copy of an event
    con.execute("INSERT INTO usage_events SELECT * FROM usage_events WHERE event_id = 'X'")
    assert duplicate_event_ids(con, D) == ["X"] and duplicate_event_ids(con, D_NEXT) == []
