"""The schema upgrade to bit sets of modules and actions (`tables.USAGE_BIT_SETS`, run by
migrations.py): every module and action the stored daily aggregates hold gets its number in
usage_value_ids, and every usage_account_days row its module_bits and action_bits, made from
the row's `modules` list and `action_events` keys before the migration drops `modules`."""

from __future__ import annotations

import duckdb

from cs_pipeline.vocabulary import sql_macros
from cs_pipeline.warehouse import read_sql, set_variables


def bit_sets_from_lists(con: duckdb.DuckDBPyConnection) -> None:
    """Numbers the stored values (by first delivery day, then name) and fills the bit sets of
    every stored row, one delivery day at a time."""
    con.execute(sql_macros())  # a migration runs before connect creates the macros
    con.execute(read_sql("usage/number_stored_values.sql"))
    fill = read_sql("usage/fill_bit_sets.sql")
    days = con.execute("SELECT DISTINCT partition_date FROM usage_account_days ORDER BY 1").fetchall()
    for (partition_date,) in days:
        set_variables(con, partition_date=partition_date)
        con.execute(fill)
