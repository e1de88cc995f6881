"""In-memory Salesforce records: typed, with server-kept system fields, behind a lock.

Writes through the Python API (`insert`, `update`, `delete`) behave like Salesforce's:
the server assigns Id, CreatedDate and SystemModstamp, and `delete` is a soft delete
(IsDeleted = true, visible only to queryAll). Every write gets one SystemModstamp, whole
seconds like Salesforce's, strictly later than any stamp already in the store: the clock's
time, or one second after the newest stamp when the clock is not past it (a frozen test
clock, or imported rows stamped in the future). So `SystemModstamp > watermark` always
sees a later write.

`import_records` and `load_csv_exports` (a directory of `<Object>.csv` exports) bring in
rows as exported, keeping their Id, CreatedDate, SystemModstamp and IsDeleted.
"""

from __future__ import annotations

import csv
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cs_pipeline_testing.salesforce_server.schema import (
    DEFAULT_SCHEMAS,
    SYSTEM_FIELDS,
    FieldSpec,
    ObjectSchema,
    Record,
    coerce_value,
    text_parser,
)
from cs_pipeline_testing.salesforce_server.soql import BoundQuery, execute

_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ONE_SECOND = timedelta(seconds=1)


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character id: 3-char prefix, `number` in base 62 (12 chars), 3-char case checksum.

    The checksum is Salesforce's: each 5-char block of the 15-char id gives one char
    encoding which of its letters are upper case.
    """
    digits = []
    for _ in range(12):
        number, digit = divmod(number, 62)
        digits.append(_ID_CHARS[digit])
    short = prefix + "".join(reversed(digits))
    checksum = ""
    for block in range(3):
        chunk = short[block * 5 : block * 5 + 5]
        bits = sum(1 << position for position, char in enumerate(chunk) if "A" <= char <= "Z")
        checksum += _CHECKSUM_CHARS[bits]
    return short + checksum


class Clock:
    """The server's notion of now: real UTC time unless a test sets it (then it stays put until moved)."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._frozen_at = _utc(frozen_at) if frozen_at else None

    def now(self) -> datetime:
        """The server's current time (frozen when a test set it)."""
        return self._frozen_at or datetime.now(timezone.utc)

    def set(self, moment: datetime) -> None:
        """Freeze the clock at `moment`."""
        self._frozen_at = _utc(moment)

    def advance(self, delta: timedelta) -> datetime:
        """Move the frozen clock on by `delta`; returns the new time."""
        self._frozen_at = self.now() + delta
        return self._frozen_at


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"the clock needs a timezone-aware datetime, not {moment!r}")
    return moment.astimezone(timezone.utc)


class SalesforceStore:
    """The records the server holds per object, with SystemModstamp and deletion tracking (thread-safe)."""
    def __init__(self, schemas: Iterable[ObjectSchema] = DEFAULT_SCHEMAS, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._lock = threading.RLock()
        self._schemas: dict[str, ObjectSchema] = {}
        self._records: dict[str, dict[str, Record]] = {}
        self._id_numbers = itertools.count(1)
        self._newest_stamp: datetime | None = None
        for schema in schemas:
            self.register(schema)

    # --- schemas ---

    def register(self, schema: ObjectSchema) -> None:
        """Add an object (or replace its schema, keeping records) — for custom objects in tests."""
        with self._lock:
            clash = next(
                (s for s in self._schemas.values() if s.key_prefix == schema.key_prefix and s.name != schema.name),
                None,
            )
            if clash:
                raise ValueError(f"key prefix {schema.key_prefix} of {schema.name} is already {clash.name}'s")
            self._schemas[schema.name] = schema
            self._records.setdefault(schema.name, {})

    @property
    def schemas(self) -> Mapping[str, ObjectSchema]:
        """The schema of every object, by name."""
        return dict(self._schemas)

    def schema(self, object_name: str) -> ObjectSchema:
        """The schema of `object_name` (case-insensitive); KeyError if there is none."""
        for schema in self._schemas.values():
            if schema.name.lower() == object_name.lower():
                return schema
        raise KeyError(f"no object {object_name!r} (known: {', '.join(self._schemas)})")

    # --- writes ---

    def insert(self, object_name: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create records (field → value, no system fields); returns their new ids, in order."""
        schema = self.schema(object_name)
        with self._lock:
            stamp = self._next_stamp()
            ids = []
            for fields in records:
                record = self._checked_fields(schema, fields)
                record.update(Id=self._new_id(schema), IsDeleted=False, CreatedDate=stamp, SystemModstamp=stamp)
                self._records[schema.name][record["Id"]] = record
                ids.append(record["Id"])
            return ids

    def update(self, object_name: str, record_id: str, fields: Mapping[str, Any]) -> None:
        """Change fields of a record, bumping its SystemModstamp."""
        schema = self.schema(object_name)
        with self._lock:
            current = self._live_record(schema, record_id)
            # A new dict, so a query result or cursor taken earlier keeps the old values.
            updated = {**current, **self._checked_fields(schema, fields), "SystemModstamp": self._next_stamp()}
            self._records[schema.name][record_id] = updated

    def delete(self, object_name: str, record_ids: Iterable[str]) -> None:
        """Soft-delete: IsDeleted becomes true and SystemModstamp moves on; only queryAll still sees them."""
        schema = self.schema(object_name)
        with self._lock:
            records = [self._live_record(schema, record_id) for record_id in record_ids]
            stamp = self._next_stamp()
            for record in records:
                self._records[schema.name][record["Id"]] = {**record, "IsDeleted": True, "SystemModstamp": stamp}

    def import_records(self, object_name: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add records as exported: Id, CreatedDate, SystemModstamp and IsDeleted are kept when given
        (and assigned like `insert` when not). An existing Id is replaced."""
        schema = self.schema(object_name)
        typed = [
            {name: coerce_value(self._field(schema, name), value) for name, value in fields.items()}
            for fields in records
        ]
        return self._import_typed(schema, typed)

    def load_csv_exports(self, directory: Path | str) -> dict[str, int]:
        """Load `<Object>.csv` for every object that has one, as `import_records` would; returns rows per object.
        A directory of dated exports (`date=YYYY-MM-DD/` folders) loads the newest one.

        Headers are field names. A `Rel.Field` header (e.g. `Product2.ProductCode`) names a field
        of the record a reference field points at: that record is found by those values, or
        created, and the reference field (`Product2Id`) set. Empty cells are null. Objects load
        in schema order, so a referenced object registered first can come from its own CSV.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"CRM export directory {directory} does not exist")
        dated = sorted(path for path in directory.glob("date=*") if path.is_dir())
        if dated and not any(directory.glob("*.csv")):  # dated exports: the newest is today's CRM
            directory = dated[-1]
        loaded = {}
        for schema in list(self._schemas.values()):
            path = directory / f"{schema.name}.csv"
            if path.is_file():
                loaded[schema.name] = len(self._import_typed(schema, _read_export(self, schema, path)))
        return loaded

    def _import_typed(self, schema: ObjectSchema, records: list[Record]) -> list[str]:
        with self._lock:
            stored = self._records[schema.name]
            for record in records:
                record["Id"] = record.get("Id") or self._new_id(schema)
                record["IsDeleted"] = bool(record.get("IsDeleted"))
                stamp = record.get("SystemModstamp") or self._next_stamp()
                record["SystemModstamp"] = stamp
                record["CreatedDate"] = record.get("CreatedDate") or stamp
                if self._newest_stamp is None or stamp > self._newest_stamp:
                    self._newest_stamp = stamp
                stored[record["Id"]] = record
            return [record["Id"] for record in records]

    # --- reads ---

    def get(self, object_name: str, record_id: str) -> Record | None:
        """A copy of the record (deleted or not), or None."""
        record = self._records[self.schema(object_name).name].get(record_id)
        return dict(record) if record is not None else None

    def records(self, object_name: str, include_deleted: bool = False) -> list[Record]:
        """Copies of the object's records in insertion order."""
        with self._lock:
            stored = self._records[self.schema(object_name).name].values()
            return [dict(record) for record in stored if include_deleted or not record["IsDeleted"]]

    def query(self, query: BoundQuery, include_deleted: bool) -> list[Record]:
        """The records `query` selects (query or queryAll semantics). The returned dicts are the
        stored ones, never mutated later (writes replace them), so callers may keep them as a snapshot."""
        with self._lock:
            stored = self._records[query.schema.name].values()
            candidates = [record for record in stored if include_deleted or not record["IsDeleted"]]
        return execute(query, candidates, self.follow)

    def follow(self, reference: FieldSpec, record_id: str) -> Record | None:
        """The record a reference field points at, if it exists."""
        records = self._records.get(reference.reference_to or "")
        return records.get(record_id) if records is not None else None

    # --- internals ---

    def _next_stamp(self) -> datetime:
        stamp = self.clock.now().replace(microsecond=0)
        if self._newest_stamp is not None and stamp <= self._newest_stamp:
            stamp = self._newest_stamp.replace(microsecond=0) + _ONE_SECOND
        self._newest_stamp = stamp
        return stamp

    def _new_id(self, schema: ObjectSchema) -> str:
        existing = self._records[schema.name]
        while True:
            candidate = salesforce_id(schema.key_prefix, next(self._id_numbers))
            if candidate not in existing:
                return candidate

    def _live_record(self, schema: ObjectSchema, record_id: str) -> Record:
        record = self._records[schema.name].get(record_id)
        if record is None:
            raise KeyError(f"no {schema.name} with Id {record_id}")
        if record["IsDeleted"]:
            raise ValueError(f"{schema.name} {record_id} is deleted (ENTITY_IS_DELETED)")
        return record

    @staticmethod
    def _field(schema: ObjectSchema, name: str) -> FieldSpec:
        spec = schema.field(name)
        if spec is None or spec.name != name:
            raise KeyError(f"{schema.name} has no field {name!r}")
        return spec

    def _checked_fields(self, schema: ObjectSchema, fields: Mapping[str, Any]) -> Record:
        system = [name for name in fields if name in SYSTEM_FIELDS]
        if system:
            raise ValueError(f"{', '.join(system)} cannot be written: the server sets system fields")
        return {name: coerce_value(self._field(schema, name), value) for name, value in fields.items()}


# --- CSV exports -----------------------------------------------------------------------


def _read_export(store: SalesforceStore, schema: ObjectSchema, path: Path) -> list[Record]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        readers = [_column_reader(store, schema, path, name) for name in header]
        plain_columns = [(index, header[index], parse) for index, parse in enumerate(readers) if parse is not None]
        relationship_columns = _relationship_columns(schema, header)
        find_or_create = _ParentFinder(store)
        records = []
        for line_number, row in enumerate(reader, start=2):
            if not row:  # a blank line, e.g. at the end of the file
                continue
            if len(row) != len(header):
                raise ValueError(f"{path} line {line_number}: {len(row)} cells for {len(header)} columns")
            try:
                records.append(_read_row(plain_columns, relationship_columns, find_or_create, row))
            except ValueError as exc:
                raise ValueError(f"{path} line {line_number}: {exc}") from exc
        return records


def _read_row(
    plain_columns: list[tuple[int, str, Callable[[str], Any]]],
    relationship_columns: dict[FieldSpec, dict[str, int]],
    find_or_create: _ParentFinder,
    row: list[str],
) -> Record:
    record: Record = {}
    for index, name, parse in plain_columns:
        text = row[index]
        if text != "":
            try:
                record[name] = parse(text)
            except ValueError as exc:
                raise ValueError(f"column {name}: {exc}") from exc
    for reference, columns in relationship_columns.items():
        parent_fields = {field: row[index] for field, index in columns.items() if row[index] != ""}
        record[reference.name] = find_or_create(reference, parent_fields) if parent_fields else None
    return record


def _column_reader(store: SalesforceStore, schema: ObjectSchema, path: Path, name: str) -> Callable[[str], Any] | None:
    """The parser of a plain field column; None for a relationship column (read separately)."""
    if "." in name:
        relationship, _, field_name = name.partition(".")
        reference = schema.relationship(relationship)
        target = store.schemas.get(reference.reference_to or "") if reference else None
        if reference is None or target is None or target.field(field_name) is None or "." in field_name:
            raise ValueError(f"{path}: column {name} is not a field of a record {schema.name} refers to")
        return None
    spec = schema.field(name)
    if spec is None or spec.name != name:
        raise ValueError(f"{path}: column {name} is not a field of {schema.name} (register a schema that has it)")
    return text_parser(spec.type)


def _relationship_columns(schema: ObjectSchema, header: list[str]) -> dict[FieldSpec, dict[str, int]]:
    """Reference field → {parent field name: column index} for the `Rel.Field` columns."""
    columns: dict[FieldSpec, dict[str, int]] = {}
    for index, name in enumerate(header):
        if "." in name:
            relationship, _, field_name = name.partition(".")
            reference = schema.relationship(relationship)
            assert reference is not None  # checked by _column_reader
            columns.setdefault(reference, {})[field_name] = index
    return columns


class _ParentFinder:
    """Finds (or creates) the parent record having given field values, e.g. the Product2 with
    ProductCode 'Widget1' and Name 'Widget 1', with one index per reference and field set."""

    def __init__(self, store: SalesforceStore) -> None:
        self._store = store
        self._indexes: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], str]] = {}

    def __call__(self, reference: FieldSpec, text_values: dict[str, str]) -> str:
        target = self._store.schema(reference.reference_to or "")
        values: Record = {}
        for name in sorted(text_values, key=str.lower):
            spec = target.field(name)
            assert spec is not None  # checked by _column_reader
            values[spec.name] = text_parser(spec.type)(text_values[name])
        field_names = tuple(values)
        index = self._indexes.get((target.name, field_names))
        if index is None:
            existing = self._store.records(target.name)
            index = {tuple(record.get(name) for name in field_names): record["Id"] for record in existing}
            self._indexes[(target.name, field_names)] = index
        key = tuple(values.values())
        if key not in index:
            index[key] = self._store.import_records(target.name, [values])[0]
        return index[key]
