"""How query results look on the wire: REST JSON records and Bulk API 2.0 CSV pages.

REST (`query`, `queryAll`): each record is a JSON object opening with
`"attributes": {"type": ..., "url": "/services/data/vXX.X/sobjects/<type>/<Id>"}`, then the
selected fields in SELECT order; a relationship path (`Product2.ProductCode`) becomes a
nested object with its own attributes, or null when the reference is empty. Dates are
`YYYY-MM-DD`, datetimes `YYYY-MM-DDTHH:MM:SS.000+0000`, numbers JSON numbers.

Bulk API 2.0: a CSV page with a header row of the selected paths (`Product2.ProductCode`),
empty cells for null, datetimes as `2025-11-21T08:15:00.000Z`, booleans `true`/`false`.
Every page repeats the header row, as Salesforce's do.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cs_pipeline_testing.salesforce_server.schema import FieldSpec, FieldType, Record
from cs_pipeline_testing.salesforce_server.soql import BoundQuery, Follow, read_path


def rest_datetime(moment: datetime) -> str:
    """`moment` as the REST API writes datetimes (milliseconds, +0000)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def bulk_datetime(moment: datetime) -> str:
    """`moment` as Bulk API 2.0 CSV writes datetimes (milliseconds, Z)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _iso_date(day: date) -> str:
    return day.isoformat()


def _as_is(value: Any) -> Any:
    return value


def _json_converter(field_type: FieldType) -> Callable[[Any], Any]:
    if field_type == FieldType.DATETIME:
        return rest_datetime
    if field_type == FieldType.DATE:
        return _iso_date
    return _as_is


@dataclass
class _Relationship:
    reference: FieldSpec
    node: _Node


@dataclass
class _Node:
    """The JSON shape of one record level: output key → field, or nested relationship."""

    object_name: str
    items: dict[str, FieldSpec | _Relationship] = field(default_factory=dict)


class RestRecordRenderer:
    """Turns stored records into the JSON records of a REST query response."""

    def __init__(self, query: BoundQuery, follow: Follow, api_version: str) -> None:
        self._follow = follow
        self._api_version = api_version
        self._root = _Node(query.schema.name)
        for path in query.fields:
            node = self._root
            for hop in path.hops:
                key = hop.relationship_name or hop.name
                child = node.items.get(key)
                if not isinstance(child, _Relationship):
                    child = _Relationship(hop, _Node(hop.reference_to or ""))
                    node.items[key] = child
                node = child.node
            node.items[path.field.name] = path.field

    def render(self, record: Record) -> dict[str, Any]:
        """`record` as a JSON object with the query's fields and relationships."""
        return self._render(self._root, record)

    def _render(self, node: _Node, record: Record) -> dict[str, Any]:
        url = f"/services/data/v{self._api_version}/sobjects/{node.object_name}/{record['Id']}"
        rendered: dict[str, Any] = {"attributes": {"type": node.object_name, "url": url}}
        for key, item in node.items.items():
            if isinstance(item, _Relationship):
                parent_id = record.get(item.reference.name)
                parent = self._follow(item.reference, parent_id) if parent_id is not None else None
                rendered[key] = self._render(item.node, parent) if parent is not None else None
            else:
                value = record.get(item.name)
                rendered[key] = None if value is None else _json_converter(item.type)(value)
        return rendered


# --- Bulk API 2.0 CSV ------------------------------------------------------------------

COLUMN_DELIMITERS = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


def _csv_converter(field_type: FieldType) -> Callable[[Any], Any] | None:
    """How a non-null value becomes its cell; None where csv's own str() is already right
    (text, numbers, and dates, whose str() is ISO)."""
    if field_type == FieldType.DATETIME:
        return bulk_datetime
    if field_type == FieldType.BOOLEAN:
        return _boolean_text
    return None


def _boolean_text(value: bool) -> str:
    return "true" if value else "false"


def _cell_reader(query: BoundQuery, index: int, follow: Follow) -> Callable[[Record], Any]:
    path = query.fields[index]
    convert = _csv_converter(path.field.type)
    name = path.field.name
    if path.hops:
        if convert is None:
            return lambda record: read_path(path, record, follow)
        return lambda record: _convert_present(convert, read_path(path, record, follow))
    if convert is None:
        return lambda record: record.get(name)
    return lambda record: _convert_present(convert, record.get(name))


def _convert_present(convert: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else convert(value)


def bulk_csv_page(
    query: BoundQuery, records: Sequence[Record], follow: Follow, column_delimiter: str, line_ending: str
) -> str:
    """One results page: header row, then a row per record (csv writes None as an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=column_delimiter, lineterminator=line_ending)
    writer.writerow([path.text for path in query.fields])
    cells = [_cell_reader(query, index, follow) for index in range(len(query.fields))]
    writer.writerows([cell(record) for cell in cells] for record in records)
    return buffer.getvalue()
