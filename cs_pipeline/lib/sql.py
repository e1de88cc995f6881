"""SQL text helpers any domain may use."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """`name` as a DuckDB identifier, in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def same_columns(left: str, right: str, columns: list[str]) -> str:
    """A condition true when the rows `left` and `right` (aliases) hold the same values in every
    column of `columns`, nulls matching nulls (never null itself)."""
    quoted = [quote_identifier(c) for c in columns]
    return " AND ".join(f"{left}.{c} IS NOT DISTINCT FROM {right}.{c}" for c in quoted)
