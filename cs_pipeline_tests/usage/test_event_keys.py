"""The keys of the stored event_ids (cs_pipeline/event_keys.py, docs/data-model.md#event-keys):
after every kind of write of usage_events, usage_event_keys holds exactly one row
(partition_date, hash(event_id)) per stored event; a key two different ids share never makes
an event a copy; keys made by another DuckDB's hash() are rebuilt on a read-write open; and a
warehouse of an older schema version gets its keys when it is upgraded to version 7."""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from cs_pipeline import event_keys, migrations, tables
from cs_pipeline.lifecycle.retention import purge_inactive_free_accounts
from cs_pipeline.usage.ingest import ingest_delivery
from cs_pipeline.warehouse import connect

D = date(2025, 11, 21)
D_NEXT = D + timedelta(days=1)


def deliver(landing: Path, day: date, text: str) -> None:
    """The day's whole delivery: one CSV file with this text (dedented), replacing what was there."""
    folder = landing / "usage" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / "events.csv").write_text(textwrap.dedent(text).lstrip("\n"))


def ingest(con, landing: Path, day: date, *, actions: int = 500) -> None:
    ingest_delivery(con, landing=landing, partition_date=day, module_limit=100, action_limit=actions, run_id="run")


def keys(con) -> list[tuple]:
    return con.execute("SELECT partition_date, event_key FROM usage_event_keys ORDER BY ALL").fetchall()


def assert_keys_in_step(con, stored_events: int) -> None:
    """One key row per usage_events row, its hash(event_id), in its delivery day."""
    expected = con.execute("SELECT partition_date, hash(event_id) FROM usage_events ORDER BY ALL").fetchall()
    assert len(expected) == stored_events
    assert keys(con) == expected


def stored(con) -> list[tuple]:
    return con.execute("SELECT event_id, partition_date FROM usage_events ORDER BY ALL").fetchall()


HEADER = "event_id,ts,account_id,user_id,module,action\n"


def test_a_redelivered_day_keeps_the_keys_of_its_new_events_only(con, landing):
    deliver(landing, D, HEADER + "e1,2025-11-21T08:00:00Z,A,,,Login\ne2,2025-11-21T09:00:00Z,A,,,Login\n")
    ingest(con, landing, D)
    assert_keys_in_step(con, 2)
    deliver(landing, D, HEADER + "e2,2025-11-21T09:00:00Z,A,,,Login\ne3,2025-11-21T10:00:00Z,A,,,Login\n")
    ingest(con, landing, D)
    assert stored(con) == [("e2", D), ("e3", D)]
    assert_keys_in_step(con, 2)


def test_a_later_days_copy_taking_over_and_a_day_run_out_of_order_keep_the_keys_in_step(con, landing):
    deliver(landing, D, HEADER + "e1,2025-11-21T08:00:00Z,A,,,Login\n")
    deliver(landing, D_NEXT, HEADER + "e1,2025-11-21T08:00:00Z,A,,,Login\ne2,2025-11-22T08:00:00Z,A,,,Login\n")
    ingest(con, landing, D_NEXT)  # out of order: the 22nd first holds e1
    assert stored(con) == [("e1", D_NEXT), ("e2", D_NEXT)]
    assert_keys_in_step(con, 2)
    ingest(con, landing, D)  # the 21st's earlier copy of e1 wins: the 22nd's becomes a copy
    assert stored(con) == [("e1", D), ("e2", D_NEXT)]
    assert_keys_in_step(con, 2)
    deliver(landing, D, HEADER + "e3,2025-11-21T09:00:00Z,A,,,Login\n")
    ingest(con, landing, D)  # the 21st again, without e1: the 22nd's copy takes over
    assert stored(con) == [("e1", D_NEXT), ("e2", D_NEXT), ("e3", D)]
    assert_keys_in_step(con, 3)


def test_the_limits_rejecting_stored_events_keep_the_keys_in_step(con, landing):
    # limit of one action: the first day's Login is admitted; the 22nd's View is rejected until
    # the 21st is re-delivered without Login, which moves View within the limit and Login out
    deliver(landing, D, HEADER + "e1,2025-11-21T08:00:00Z,A,,,Login\n")
    deliver(landing, D_NEXT, HEADER + "e2,2025-11-22T08:00:00Z,A,,,View\ne3,2025-11-22T09:00:00Z,A,,,Login\n")
    ingest(con, landing, D, actions=1)
    ingest(con, landing, D_NEXT, actions=1)
    assert stored(con) == [("e1", D), ("e3", D_NEXT)]
    assert_keys_in_step(con, 2)
    deliver(landing, D, HEADER + "e4,2025-11-21T07:00:00Z,A,,,View\n")
    ingest(con, landing, D, actions=1)
    assert stored(con) == [("e2", D_NEXT), ("e4", D)]
    assert con.execute("SELECT raw ->> 'event_id' FROM rejected_events WHERE reason = 'action_limit'").fetchall() == [
        ("e3",)
    ]
    assert_keys_in_step(con, 2)


def free_metrics_row(con, day: date, account_id: str) -> None:
    """The one account_metrics row retention reads: the account is Free on `day`."""
    con.execute(
        "INSERT INTO account_metrics BY NAME SELECT ?::DATE AS date, ? AS account_id, 'account' AS account_type, "
        "'Free' AS status_group, 0 AS active_users_1d, 0 AS active_users_7d, 0 AS active_users_14d, "
        "0 AS active_users_30d, 0 AS events_14d, 0 AS events_30d, 0 AS active_days_14d, 0 AS active_days_30d, "
        "0 AS modules_used_30d, 0 AS actions_used_30d, 'Dormant' AS usage_frequency, 'run' AS run_id",
        [day, account_id],
    )


def test_a_retention_purge_removes_one_key_row_per_purged_event_even_where_two_ids_share_a_key(con, landing):
    deliver(landing, D, HEADER + "f1,2025-11-21T08:00:00Z,FREE,,,Login\nf2,2025-11-21T09:00:00Z,FREE,,,Login\n"
            "p1,2025-11-21T10:00:00Z,PAID,,,Login\n")  # fmt: skip
    ingest(con, landing, D)
    # p1 given f1's key by hand, as a 64-bit collision would: two key rows (D, hash('f1'))
    con.execute("UPDATE usage_event_keys SET event_key = hash('f1') WHERE event_key = hash('p1')")
    as_of = D + timedelta(days=3)
    free_metrics_row(con, as_of, "FREE")
    purged = purge_inactive_free_accounts(con, as_of=as_of, inactive_days=3, run_id="run")
    assert (purged.accounts_purged, purged.rows_purged) == (1, 2)
    assert stored(con) == [("p1", D)]
    # f1's and f2's rows went; p1's row (under f1's key) stayed
    [(f1_key,)] = con.execute("SELECT hash('f1')").fetchall()
    assert keys(con) == [(D, f1_key)]
    con.execute("UPDATE usage_event_keys SET event_key = hash('p1')")
    assert_keys_in_step(con, 1)


def test_a_key_two_different_ids_share_does_not_make_an_event_a_copy(con, landing):
    deliver(landing, D, HEADER + "e1,2025-11-21T08:00:00Z,A,,,Login\n")
    ingest(con, landing, D)
    # e1's key row says hash('e2'), as a 64-bit collision of e1 and e2 would
    con.execute("UPDATE usage_event_keys SET event_key = hash('e2')")
    deliver(landing, D_NEXT, HEADER + "e2,2025-11-22T08:00:00Z,A,,,Login\n")
    ingest(con, landing, D_NEXT)
    [(candidates,)] = con.execute("SELECT count(*) FROM candidate_keys").fetchall()
    assert candidates == 1  # the collision was a candidate, and the event_ids told them apart
    assert stored(con) == [("e1", D), ("e2", D_NEXT)]
    assert con.execute("SELECT count(*) FROM usage_event_copies").fetchall() == [(0,)]


def test_keys_made_by_another_hash_are_rebuilt_on_a_read_write_open_and_only_then(tmp_path, landing):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        deliver(landing, D, HEADER + "e1,2025-11-21T08:00:00Z,A,,,Login\ne2,2025-11-21T09:00:00Z,A,,,Login\n")
        ingest(con, landing, D)
        con.execute("DELETE FROM usage_event_keys WHERE event_key = hash('e2')")
    with connect(path) as con:  # the canaries match: the keys are left as they are (no rebuild per open)
        assert len(keys(con)) == 1
        # what another DuckDB's hash() would have recorded
        con.execute(
            "UPDATE usage_event_key_canary SET event_key = event_key + 1 WHERE canary = ?", [event_keys.CANARIES[1]]
        )
        assert not event_keys.made_by_this_hash(con)
    with duckdb.connect(str(path), read_only=True) as con:
        assert len(keys(con)) == 1  # a read-only open changes nothing
    with connect(path) as con:
        assert_keys_in_step(con, 2)
        assert event_keys.made_by_this_hash(con)


@pytest.mark.parametrize("version", [5, 6])
def test_a_warehouse_of_version_5_or_6_gets_the_keys_of_its_events_as_version_7(tmp_path, version):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:  # what the code of that version made, with two stored events
        con.execute(tables.create_statements(version=version))
        con.execute(tables.comment_statements(version=version))
        con.execute("INSERT INTO schema_version VALUES (?, now(), 'new warehouse')", [version])
        con.execute(
            "INSERT INTO usage_events VALUES "
            "('e1', '2025-11-21 08:00:00+00', '2025-11-21', 'A', NULL, NULL, 'Login', '2025-11-21', 'a.csv', 1, 'r'), "
            "('e2', '2025-11-21 08:00:00+00', '2025-11-21', 'A', NULL, NULL, 'Login', '2025-11-22', 'a.csv', 1, 'r')"
        )
    with connect(path) as con:
        assert [v for (v,) in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()] == list(
            range(version, migrations.LATEST + 1)
        )
        assert tables.EVENT_KEYS == 7
        assert_keys_in_step(con, 2)
        assert event_keys.made_by_this_hash(con)
