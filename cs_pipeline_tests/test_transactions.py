import duckdb
import pytest

from cs_pipeline.transactions import transaction


def test_a_transaction_commits_when_its_block_ends():
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x INTEGER)")
    with transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]


@pytest.mark.parametrize("error", [ValueError("bad row"), KeyboardInterrupt()])
def test_a_transaction_rolls_back_on_any_exception(error):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(type(error)), transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
        raise error
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    with transaction(con):  # and the connection is usable again
        con.execute("INSERT INTO t VALUES (2)")
    assert con.execute("SELECT x FROM t").fetchall() == [(2,)]
