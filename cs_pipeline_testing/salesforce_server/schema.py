"""Describe metadata of the emulated Salesforce objects, and typed field values.

Each object has a schema: its fields with a Salesforce type, label, nillability and, for
lookups, the target object and relationship name (what `sobjects/X/describe` answers).
Every object carries the system fields Id, IsDeleted, CreatedDate and SystemModstamp.

Values are held as Python types: text types as `str`, date as `datetime.date`, datetime
as a UTC-aware `datetime.datetime`, double/currency/percent as `float`, int as `int`,
boolean as `bool`; null is `None`. `parse_text` reads the text of a CSV export cell and
`coerce_value` checks a value given through the Python API.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any

Record = dict[str, Any]


class FieldType(str, Enum):
    """The Salesforce field types the server knows."""
    ID = "id"
    STRING = "string"
    REFERENCE = "reference"
    DATE = "date"
    DATETIME = "datetime"
    DOUBLE = "double"
    CURRENCY = "currency"
    PERCENT = "percent"
    INT = "int"
    BOOLEAN = "boolean"
    PICKLIST = "picklist"
    TEXTAREA = "textarea"
    EMAIL = "email"


TEXT_TYPES = frozenset(
    {FieldType.ID, FieldType.STRING, FieldType.REFERENCE, FieldType.PICKLIST, FieldType.TEXTAREA, FieldType.EMAIL}
)
NUMBER_TYPES = frozenset({FieldType.DOUBLE, FieldType.CURRENCY, FieldType.PERCENT, FieldType.INT})

SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "SystemModstamp")


@dataclass(frozen=True)
class FieldSpec:
    """A field of an object: name, type, label and, for a reference, its relationship."""
    name: str
    type: FieldType
    label: str = ""
    nillable: bool = True
    reference_to: str | None = None
    relationship_name: str | None = None

    def __post_init__(self) -> None:
        is_reference = self.type == FieldType.REFERENCE
        if is_reference != (self.reference_to is not None and self.relationship_name is not None):
            raise ValueError(f"field {self.name}: a reference needs reference_to and relationship_name, others neither")
        if not self.label:
            object.__setattr__(self, "label", _label_for(self.name))

    def describe(self) -> dict[str, Any]:
        """The field as the describe call returns it."""
        return {
            "name": self.name,
            "type": self.type.value,
            "label": self.label,
            "nillable": self.nillable,
            "referenceTo": [self.reference_to] if self.reference_to else [],
            "relationshipName": self.relationship_name,
            "custom": self.name.endswith("__c"),
        }


@dataclass(frozen=True)
class ObjectSchema:
    """One object's describe metadata; field and relationship names resolve case-insensitively, as in SOQL."""

    name: str
    key_prefix: str
    fields: tuple[FieldSpec, ...]
    label: str = ""
    _by_name: dict[str, FieldSpec] = dataclasses.field(init=False, repr=False, compare=False)
    _by_relationship: dict[str, FieldSpec] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9A-Za-z]{3}", self.key_prefix):
            raise ValueError(f"object {self.name}: key prefix must be 3 letters or digits, not {self.key_prefix!r}")
        redeclared = [spec.name for spec in self.fields if spec.name in SYSTEM_FIELDS]
        if redeclared:
            raise ValueError(f"object {self.name}: {', '.join(redeclared)} are system fields, added to every object")
        id_field, *other_system_fields = _system_fields()
        fields = (id_field, *self.fields, *other_system_fields)  # Id first, as Salesforce describes it
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "label", self.label or _label_for(self.name))
        object.__setattr__(self, "_by_name", {spec.name.lower(): spec for spec in fields})
        relationships = {spec.relationship_name.lower(): spec for spec in fields if spec.relationship_name}
        object.__setattr__(self, "_by_relationship", relationships)
        if len(self._by_name) != len(fields):
            raise ValueError(f"object {self.name}: field names must be unique (case-insensitively)")

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name` (case-insensitive), else None."""
        return self._by_name.get(name.lower())

    def relationship(self, name: str) -> FieldSpec | None:
        """The reference field whose relationship name is `name` (e.g. Asset's `Product2` → Product2Id)."""
        return self._by_relationship.get(name.lower())

    def describe(self) -> dict[str, Any]:
        """The object as the describe call returns it."""
        return {
            "name": self.name,
            "label": self.label,
            "keyPrefix": self.key_prefix,
            "custom": self.name.endswith("__c"),
            "queryable": True,
            "fields": [spec.describe() for spec in self.fields],
        }


def _system_fields() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("Id", FieldType.ID, "Record ID", nillable=False),
        FieldSpec("IsDeleted", FieldType.BOOLEAN, "Deleted", nillable=False),
        FieldSpec("CreatedDate", FieldType.DATETIME, "Created Date", nillable=False),
        FieldSpec("SystemModstamp", FieldType.DATETIME, "System Modstamp", nillable=False),
    )


def _label_for(api_name: str) -> str:
    base = api_name.removesuffix("__c").replace("_", " ")
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base)


def _account_reference() -> FieldSpec:
    return FieldSpec(
        "AccountId", FieldType.REFERENCE, "Account ID", reference_to="Account", relationship_name="Account"
    )


DEFAULT_SCHEMAS: tuple[ObjectSchema, ...] = (
    ObjectSchema(
        "Account",
        "001",
        (
            FieldSpec("Name", FieldType.STRING, "Account Name", nillable=False),
            FieldSpec(
                "ParentId", FieldType.REFERENCE, "Parent Account ID", reference_to="Account", relationship_name="Parent"
            ),
            FieldSpec("External_Id__c", FieldType.STRING, "External Id"),
            FieldSpec("Status__c", FieldType.PICKLIST, "Status"),
            FieldSpec("Customer_Since__c", FieldType.DATE, "Customer Since"),
            FieldSpec("Contract_Value__c", FieldType.CURRENCY, "Contract Value"),
            FieldSpec("Renewal_Date__c", FieldType.DATE, "Renewal Date"),
            FieldSpec("Licenses__c", FieldType.DOUBLE, "Licenses"),
            FieldSpec("CSM_Risk__c", FieldType.PICKLIST, "CSM Risk"),
            FieldSpec("Segment__c", FieldType.PICKLIST, "Segment"),
        ),
    ),
    ObjectSchema(
        "Product2",
        "01t",
        (
            FieldSpec("Name", FieldType.STRING, "Product Name", nillable=False),
            FieldSpec("ProductCode", FieldType.STRING, "Product Code"),
        ),
        label="Product",
    ),
    ObjectSchema(
        "Contact",
        "003",
        (
            _account_reference(),
            FieldSpec("Name", FieldType.STRING, "Full Name", nillable=False),
            FieldSpec("Email", FieldType.EMAIL),
        ),
    ),
    ObjectSchema(
        "Asset",
        "02i",
        (
            _account_reference(),
            FieldSpec(
                "Product2Id", FieldType.REFERENCE, "Product ID", reference_to="Product2", relationship_name="Product2"
            ),
            FieldSpec("Status", FieldType.PICKLIST),
            FieldSpec("Quantity", FieldType.DOUBLE),
            FieldSpec("Price", FieldType.CURRENCY),
            FieldSpec("InstallDate", FieldType.DATE, "Install Date"),
        ),
    ),
)

# --- typed values --------------------------------------------------------------------

_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
# Salesforce always writes an offset; fractions of a second are optional.
_DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})")


def parse_date(text: str) -> date:
    """`text` as a SOQL date literal (YYYY-MM-DD), else a SoqlError."""
    try:
        if _DATE_TEXT.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError as exc:  # the right shape but no such day
        raise ValueError(f"{text!r} is not a valid date: {exc}") from exc
    raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")


def parse_datetime(text: str) -> datetime:
    """`text` as a SOQL datetime literal (with an offset or Z) in UTC, else a SoqlError."""
    try:
        if _DATETIME_TEXT.fullmatch(text):
            return datetime.fromisoformat(text).astimezone(timezone.utc)
    except ValueError as exc:  # the right shape but no such moment
        raise ValueError(f"{text!r} is not a valid datetime: {exc}") from exc
    raise ValueError(f"{text!r} is not a datetime with an offset (e.g. 2025-11-21T08:15:00.000+0000)")


def _parse_boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{text!r} is not a boolean (true or false)")
    return lowered == "true"


def _parse_int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)  # raises ValueError naming the text
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _keep_text(text: str) -> str:
    return text


_TEXT_PARSERS: dict[FieldType, Callable[[str], Any]] = {
    **{text_type: _keep_text for text_type in TEXT_TYPES},
    FieldType.DATE: parse_date,
    FieldType.DATETIME: parse_datetime,
    FieldType.DOUBLE: _parse_float,
    FieldType.CURRENCY: _parse_float,
    FieldType.PERCENT: _parse_float,
    FieldType.INT: _parse_int,
    FieldType.BOOLEAN: _parse_boolean,
}


def text_parser(field_type: FieldType) -> Callable[[str], Any]:
    """A function reading a non-empty CSV cell of this type (an empty cell is null, read by the caller)."""
    parse = _TEXT_PARSERS[field_type]
    if field_type in TEXT_TYPES:
        return parse
    return lambda text: parse(text.strip())


def parse_text(field_type: FieldType, text: str) -> Any:
    """The typed value of a CSV cell; empty text is null, as in Salesforce exports."""
    return None if text == "" else text_parser(field_type)(text)


_PYTHON_TYPES: dict[FieldType, tuple[type, ...]] = {
    **{text_type: (str,) for text_type in TEXT_TYPES},
    FieldType.DATE: (date,),
    FieldType.DATETIME: (datetime,),
    FieldType.DOUBLE: (int, float),
    FieldType.CURRENCY: (int, float),
    FieldType.PERCENT: (int, float),
    FieldType.INT: (int,),
    FieldType.BOOLEAN: (bool,),
}


def coerce_value(spec: FieldSpec, value: Any) -> Any:
    """A value given through the Python API, checked against the field type.

    Text in the CSV export forms is accepted for every type, so tests can write
    `{"Renewal_Date__c": "2026-01-31"}` as well as `date(2026, 1, 31)`.
    """
    if value is None:
        return None
    if isinstance(value, str) and spec.type not in TEXT_TYPES:
        return parse_text(spec.type, value)
    expected = _PYTHON_TYPES[spec.type]
    is_bool = isinstance(value, bool)
    wrong_bool = is_bool != (spec.type == FieldType.BOOLEAN)  # bool is an int subclass
    is_datetime_for_date = spec.type == FieldType.DATE and isinstance(value, datetime)
    if not isinstance(value, expected) or wrong_bool or is_datetime_for_date:
        raise TypeError(f"field {spec.name} ({spec.type.value}) cannot hold {value!r}")
    if spec.type == FieldType.DATETIME:
        if value.tzinfo is None:
            raise TypeError(f"field {spec.name} (datetime) needs a timezone-aware value, not {value!r}")
        return value.astimezone(timezone.utc)
    if spec.type in (FieldType.DOUBLE, FieldType.CURRENCY, FieldType.PERCENT):
        return float(value)
    return value
