"""Warehouses of older schema versions made from a current one's rows, for the upgrade tests."""

from __future__ import annotations

from cs_pipeline import tables

# Columns of version 1 that a later version dropped: how to make each from the current tables of
# the attached catalog `source`, for the row `d` of its table.
DROPPED_SINCE_1 = {
    ("usage_account_days", "modules"): (
        "coalesce((SELECT list(DISTINCT e.module ORDER BY e.module) FILTER (e.module IS NOT NULL) "
        "FROM source.usage_events e WHERE (e.partition_date, e.event_date, e.account_id) = "
        "(d.partition_date, d.event_date, d.account_id)), []) AS modules"
    )
}


def version_1_columns(table: tables.Table) -> list[str]:
    """The select expressions of `table`'s version 1 columns, over its current rows as
    `source.<table> d` (a dropped column made as DROPPED_SINCE_1 says)."""
    return [DROPPED_SINCE_1.get((table.name, c.name), f'd."{c.name}"') for c in table.ordered(1)]
