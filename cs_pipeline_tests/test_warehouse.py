"""The warehouse held open across a command's runs (warehouse.held_open); a step's missing input day."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from cs_pipeline.warehouse import WarehouseResource, connect, held_open, require_rows


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def test_connections_share_the_held_warehouse_and_it_is_checkpointed_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with held_open(path):
        with connect(path) as con:
            con.execute("CREATE TABLE t AS SELECT range AS n FROM range(1000)")
        # closing a step's connection leaves the database open: no checkpoint yet
        assert _wal(path).exists()
        # a read-only request (the checks) reads the held database instead of failing on
        # DuckDB's one-mode-per-file rule
        with connect(path, read_only=True) as con:
            assert con.execute("SELECT count(*), sum(n) FROM t").fetchall() == [(1000, 499500)]
    assert not _wal(path).exists()
    with connect(path, read_only=True) as con:  # closed: another mode may open it now
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(1000,)]


def test_an_inner_hold_of_the_same_warehouse_leaves_it_open(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with held_open(path):
        with held_open(tmp_path / "." / "warehouse.duckdb"):
            with connect(path) as con:
                con.execute("CREATE TABLE t AS SELECT 1 AS n")
        assert _wal(path).exists()
        with connect(path, read_only=True) as con:
            assert con.execute("SELECT n FROM t").fetchall() == [(1,)]
    assert not _wal(path).exists()


def test_a_step_missing_its_input_day_fails_with_the_message_and_no_stack_trace(tmp_path: Path) -> None:
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(dg.Failure) as failure:
        with warehouse.connection() as con:
            require_rows(con, "account_metrics", date(2025, 11, 20))
    assert failure.value.description == (
        "no account_metrics rows for 2025-11-20: materialise account_metrics for 2025-11-20 first"
    )
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


MACRO_QUERY = (
    "SELECT health_labels(), active_status_group('Paying'), active_status_group('Canceled'), unknown_status_group(), "
    "in_force(DATE '2025-11-01', NULL, DATE '2025-11-02'), in_force(DATE '2025-11-01', DATE '2025-11-02', "
    "DATE '2025-11-02'), snapshot_in_force('accounts', DATE '2025-11-04'), "
    "snapshot_in_force('accounts', DATE '2025-10-01'), current_setting('TimeZone')"
)
# by hand: the vocabulary's labels; Paying is an active group, Canceled is not; a version valid from
# 11-01 holds on 11-02 while open, not once it ends on 11-02; the snapshot in force on 11-04 is
# 11-03's, and before the first snapshot the first one
MACRO_VALUES = [
    (
        ["Good", "Average", "Poor", "No value"],
        True,
        False,
        "Unknown",
        True,
        False,
        date(2025, 11, 3),
        date(2025, 11, 1),
        "UTC",
    )
]


def test_connections_of_a_held_warehouse_spell_the_macros_as_any_connection(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        con.execute(
            "INSERT INTO snapshot_dates (asset, snapshot_date, run_id) "
            "VALUES ('accounts', '2025-11-01', 'r'), ('accounts', '2025-11-03', 'r')"
        )
        assert con.execute(MACRO_QUERY).fetchall() == MACRO_VALUES
    with held_open(path):
        for read_only in (False, True, False):  # each a cursor of the held database, set up afresh
            with connect(path, read_only=read_only) as con:
                assert con.execute(MACRO_QUERY).fetchall() == MACRO_VALUES
                # what a step creates goes to the warehouse, not to the macros' catalog
                con.execute("CREATE OR REPLACE TABLE scratch AS SELECT 1 AS n")
                assert con.execute(
                    "SELECT database_name FROM duckdb_tables() WHERE table_name = 'scratch'"
                ).fetchall() == [("warehouse",)]
