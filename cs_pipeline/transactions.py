"""The one way cs_pipeline writes to DuckDB in a transaction (`transaction`). A module of its
own, imported by none of ours, so that the warehouse, its migrations and the publish queue,
which the warehouse module imports, can all use it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Begin a transaction on `con`, commit it when the block ends, roll it back when the block
    raises anything (a Polars panic or an interrupt included: no half-written day stays)."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()
