"""CRM snapshots stored as versions (cs_pipeline/crm/versions.py): whatever the order the dates
are stored in, and however often a date is stored again with other rows, the rows in force on
every day are those full copies would give (the newest snapshot dated on or before the day,
else the oldest), a day that changed nothing writes nothing, and the versions are those the
schema upgrade makes from full copies (crm/sql/versions_from_copies.sql)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs_pipeline import tables
from cs_pipeline.crm import versions
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import connect, read_sql

TABLE = "crm_account_versions"  # text, a MAP and nulls: every kind of column a snapshot has
PAYLOAD = tables.TABLES[TABLE].payload()
FIRST = date(2025, 11, 1)

# few values, so that rows repeat within a snapshot (duplicates) and across snapshots
row_strategy = st.fixed_dictionaries(
    {
        "account_id": st.sampled_from(["A", "B", "C"]),
        "status": st.sampled_from([None, "Pro", "Trial"]),
        "attributes": st.sampled_from([None, {}, {"segment": "SMB"}, {"segment": "Enterprise"}]),
    }
)
snapshot_strategy = st.lists(row_strategy, max_size=5)
# (day offset, the snapshot stored for it): offsets repeat (a day re-run with another CRM) and
# come in any order (days materialised out of order)
history_strategy = st.lists(st.tuples(st.integers(0, 6), snapshot_strategy), min_size=1, max_size=9)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    with connect(tmp_path_factory.mktemp("versions") / "warehouse.duckdb") as con:
        yield con


def store(con, day: date, rows: list[dict], run_id: str = "r") -> versions.VersionWrites:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE incoming_rows AS "
        f"SELECT * EXCLUDE (valid_from, valid_to, occurrence, run_id) FROM {TABLE} LIMIT 0"
    )
    for row in rows:
        con.execute(
            "INSERT INTO incoming_rows (account_id, status, attributes) VALUES (?, ?, ?)",
            [row["account_id"], row["status"], row["attributes"]],
        )
    with transaction(con):
        following = versions.record_snapshot_date(con, "crm_snapshot", day, run_id)
        return versions.store_snapshot(con, TABLE, day, following, "incoming_rows", run_id)


def as_key(row: dict) -> tuple:
    attributes = None if row["attributes"] is None else tuple(sorted(row["attributes"].items()))
    return row["account_id"], row["status"], attributes


def in_force(con, day: date) -> Counter:
    stored = con.execute(
        f"SELECT account_id, status, attributes FROM {TABLE} "
        "WHERE in_force(valid_from, valid_to, snapshot_in_force('crm_snapshot', ?))",
        [day],
    ).fetchall()
    return Counter(as_key({"account_id": a, "status": s, "attributes": m}) for a, s, m in stored)


def version_rows(con, table: str) -> list[tuple]:
    columns = ", ".join([*PAYLOAD, "occurrence", "valid_from", "valid_to"])
    return sorted(con.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)


def reset(con) -> None:
    con.execute(f"DELETE FROM {TABLE}")
    con.execute("DELETE FROM snapshot_dates")


@pytest.mark.e2e  # long: 60 histories
@settings(
    derandomize=True, database=None, max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(history=history_strategy)
def test_the_snapshot_in_force_on_every_day_is_what_full_copies_give(con, history):
    reset(con)
    copies: dict[date, list[dict]] = {}
    for offset, rows in history:
        day = FIRST + timedelta(days=2 * offset)  # odd days fall between snapshot dates
        store(con, day, rows)
        copies[day] = rows
    dates = sorted(copies)
    for day in (FIRST + timedelta(days=n) for n in range(-1, 15)):
        taken = [d for d in dates if d <= day]
        expected = copies[taken[-1] if taken else dates[0]]
        assert in_force(con, day) == Counter(as_key(r) for r in expected), day

    # one version per run of consecutive dates: no version continues in the next one
    [(touching,)] = con.execute(
        f"SELECT count(*) FROM {TABLE} v JOIN {TABLE} w ON v.valid_to = w.valid_from AND "
        + " AND ".join(f"v.{c} IS NOT DISTINCT FROM w.{c}" for c in [*PAYLOAD, "occurrence"])
    ).fetchall()
    assert touching == 0
    # exactly the versions the schema upgrade makes from the full copies
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE copies AS SELECT DATE '2000-01-01' AS snapshot_date, "
        f"* EXCLUDE (valid_from, valid_to, occurrence) FROM {TABLE} LIMIT 0"
    )
    for day, rows in copies.items():
        for row in rows:
            con.execute(
                "INSERT INTO copies (snapshot_date, account_id, status, attributes, run_id) VALUES (?, ?, ?, ?, 'r')",
                [day, row["account_id"], row["status"], row["attributes"]],
            )
    con.execute(f"CREATE OR REPLACE TEMP TABLE upgraded AS SELECT * FROM {TABLE} LIMIT 0")
    con.execute(
        read_sql("crm/versions_from_copies.sql").format(
            old="copies", new="upgraded", asset="crm_snapshot", payload=", ".join(PAYLOAD)
        )
    )
    assert version_rows(con, "upgraded") == version_rows(con, TABLE)


def test_a_day_that_changed_nothing_writes_nothing_and_a_change_writes_its_rows(con):
    reset(con)
    crm = [{"account_id": a, "status": "Pro", "attributes": {}} for a in "ABCDE"]
    first = store(con, FIRST, crm)
    assert (first.snapshot_rows, first.inserted, first.deleted) == (5, 5, 0)
    for n in range(1, 4):
        unchanged = store(con, FIRST + timedelta(days=n), crm)
        assert (unchanged.snapshot_rows, unchanged.inserted, unchanged.deleted) == (5, 0, 0)
    assert con.execute(f"SELECT count(*), count(valid_to) FROM {TABLE}").fetchall() == [(5, 0)]
    # B churns on the 5th: its open version is closed (rewritten with valid_to) and the new one added
    churned = [{**row, "status": "Cancelled"} if row["account_id"] == "B" else row for row in crm]
    changed = store(con, FIRST + timedelta(days=4), churned)
    assert (changed.inserted, changed.deleted) == (2, 1)
    assert con.execute(
        f"SELECT account_id, status, valid_from, valid_to FROM {TABLE} WHERE account_id = 'B' ORDER BY valid_from"
    ).fetchall() == [
        ("B", "Pro", FIRST, FIRST + timedelta(days=4)),
        ("B", "Cancelled", FIRST + timedelta(days=4), None),
    ]
    # the 3rd re-run with B already Cancelled: B's Pro version is cut around it, the 4th is left alone
    rerun = store(con, FIRST + timedelta(days=2), churned)
    assert (rerun.inserted, rerun.deleted) == (3, 1)
    assert con.execute(
        f"SELECT status, valid_from, valid_to FROM {TABLE} WHERE account_id = 'B' ORDER BY valid_from"
    ).fetchall() == [
        ("Pro", FIRST, FIRST + timedelta(days=2)),
        ("Cancelled", FIRST + timedelta(days=2), FIRST + timedelta(days=3)),
        ("Pro", FIRST + timedelta(days=3), FIRST + timedelta(days=4)),
        ("Cancelled", FIRST + timedelta(days=4), None),
    ]
    assert con.execute(
        "SELECT snapshot_date FROM snapshot_dates WHERE asset = 'crm_snapshot' ORDER BY 1"
    ).fetchall() == [(FIRST + timedelta(days=n),) for n in range(5)]


def test_rows_sharing_a_content_hash_are_numbered_by_their_content(con):
    # the content hash leaves out the MAP column: A's SMB rows (one line repeated) and its
    # Enterprise row hash alike, yet only identical rows are duplicates; a row of nulls only is a row too
    reset(con)
    smb = {"account_id": "A", "status": "Pro", "attributes": {"segment": "SMB"}}
    enterprise = {**smb, "attributes": {"segment": "Enterprise"}}
    blank = {"account_id": None, "status": None, "attributes": None}
    first = store(con, FIRST, [smb, enterprise, smb, blank])
    assert (first.snapshot_rows, first.inserted, first.deleted) == (4, 4, 0)
    # the next day drops one of the repeated lines and the blank row: their versions end there
    second = store(con, FIRST + timedelta(days=1), [enterprise, smb])
    assert (second.snapshot_rows, second.inserted, second.deleted) == (2, 2, 2)
    assert con.execute(
        f"SELECT account_id, attributes['segment'], occurrence, valid_from, valid_to FROM {TABLE} ORDER BY ALL"
    ).fetchall() == [
        ("A", "Enterprise", 0, FIRST, None),
        ("A", "SMB", 0, FIRST, None),
        ("A", "SMB", 1, FIRST, FIRST + timedelta(days=1)),
        (None, None, 0, FIRST, FIRST + timedelta(days=1)),
    ]


def test_rows_whose_content_hashes_collide_are_stored_as_when_they_do_not(con, monkeypatch):
    # every row hashing alike (the worst collisions) must give exactly the versions distinct hashes give
    days = [FIRST + timedelta(days=n) for n in (0, 4, 2, 2, 6)]  # out of order, the 3rd re-run
    crm = [{"account_id": a, "status": "Pro", "attributes": {}} for a in "ABC"]
    snapshots = [
        [*crm, crm[0]],
        [crm[0], {**crm[1], "status": "Cancelled"}, crm[2]],
        crm,
        [crm[0], crm[0], crm[0]],
        [{**crm[2], "attributes": {"segment": "SMB"}}],
    ]

    def stored_versions() -> list[tuple]:
        reset(con)
        writes = [store(con, day, rows) for day, rows in zip(days, snapshots, strict=True)]
        return [*version_rows(con, TABLE), *((w.snapshot_rows, w.inserted, w.deleted) for w in writes)]

    distinct_hashes = stored_versions()
    monkeypatch.setattr(versions, "CONTENT_HASH", "42")
    assert stored_versions() == distinct_hashes
    # and they are right: on the 7th only C with a segment; A's third line lived on the 3rd only
    assert in_force(con, FIRST + timedelta(days=6)) == Counter([("C", "Pro", (("segment", "SMB"),))])
    assert in_force(con, FIRST + timedelta(days=2)) == Counter({("A", "Pro", ()): 3})
    assert in_force(con, FIRST + timedelta(days=4)) == Counter(
        [("A", "Pro", ()), ("B", "Cancelled", ()), ("C", "Pro", ())]
    )


def store_as_entries(con, day: date, rows: list[dict]) -> versions.VersionWrites:
    """store, with the attributes given as their entries (a list of key/value structs, as a frame
    from Polars holds them) instead of a MAP."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE incoming_entries AS SELECT * EXCLUDE (valid_from, valid_to, occurrence, run_id) "
        f"REPLACE (map_entries(attributes) AS attributes) FROM {TABLE} LIMIT 0"
    )
    for row in rows:
        con.execute(
            "INSERT INTO incoming_entries (account_id, status, attributes) "
            "VALUES (?, ?, map_entries(?::MAP(VARCHAR, VARCHAR)))",
            [row["account_id"], row["status"], row["attributes"]],
        )
    with transaction(con):
        following = versions.record_snapshot_date(con, "crm_snapshot", day, "r")
        return versions.store_snapshot(con, TABLE, day, following, "incoming_entries", "r")


def test_a_map_column_given_as_its_entries_is_compared_with_the_stored_maps(con):
    reset(con)
    crm = [
        {"account_id": "A", "status": "Pro", "attributes": {"segment": "SMB"}},
        {"account_id": "B", "status": "Pro", "attributes": {}},
        {"account_id": "C", "status": "Pro", "attributes": None},
    ]
    store(con, FIRST, crm)
    unchanged = store_as_entries(con, FIRST + timedelta(days=1), crm)
    assert (unchanged.snapshot_rows, unchanged.inserted, unchanged.deleted) == (3, 0, 0)
    changed = store_as_entries(con, FIRST + timedelta(days=2), [{**crm[0], "attributes": {"segment": "ENT"}}, *crm[1:]])
    assert (changed.inserted, changed.deleted) == (2, 1)
    assert con.execute(
        f"SELECT account_id, attributes, valid_from, valid_to FROM {TABLE} ORDER BY account_id, valid_from"
    ).fetchall() == [
        ("A", {"segment": "SMB"}, FIRST, FIRST + timedelta(days=2)),
        ("A", {"segment": "ENT"}, FIRST + timedelta(days=2), None),
        ("B", {}, FIRST, None),
        ("C", None, FIRST, None),
    ]
    assert con.execute(f"SELECT DISTINCT typeof(attributes) FROM {TABLE}").fetchall() == [("MAP(VARCHAR, VARCHAR)",)]
