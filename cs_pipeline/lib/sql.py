"""SQL text helpers any domain may use."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """`name` as a DuckDB identifier, in double quotes."""
    return '"' + name.replace('"', '""') + '"'
