"""The subset of SOQL the local Salesforce server understands: parse, check, evaluate.

    SELECT path, path, ... FROM Object
    [WHERE path op literal [AND path op literal ...]]
    [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST] [, ...]]
    [LIMIT n]

A path is a field (`Name`) or a parent relationship path (`Product2.ProductCode`,
`Parent.Parent.Name`); `op` is one of `= != <> < <= > >=`; a literal is a datetime
(`2025-11-21T08:15:00Z`, `...00.000Z`, `...+00:00`, `...+0000`), a date (`2025-11-21`), a
single-quoted string with backslash escapes, a number, `true`/`false` or `null` (only with
`=`/`!=`/`<>`). Keywords, object and field names are case-insensitive.

Semantics follow Salesforce where this subset reaches: text comparisons and sorting ignore
case; `!=` matches null values; an ordering comparison never matches null; ORDER BY puts
nulls first ascending and last descending unless NULLS FIRST/LAST says otherwise. A literal
must suit the field type (datetime field with a datetime, date field with a date, text with
a string, number with a number, boolean with true/false).

Everything else (OR, NOT, IN, LIKE, functions, subqueries, GROUP BY, OFFSET, date literals
such as TODAY, ...) is rejected with a `SoqlError` whose `error_code` is what Salesforce
answers: MALFORMED_QUERY for syntax, INVALID_FIELD for an unknown field or relationship or a
literal of the wrong type, INVALID_TYPE for an unknown object. Messages name the token.

Pure: no I/O. `parse` gives the syntax tree, `bind` checks it against describe metadata,
`execute` filters, sorts and limits records.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cs_pipeline_testing.salesforce_server.schema import (
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldSpec,
    FieldType,
    ObjectSchema,
    Record,
    parse_date,
    parse_datetime,
)

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"


class SoqlError(ValueError):
    """A SOQL query the server cannot run, with Salesforce's error code."""
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


# --- tokens ----------------------------------------------------------------------------

_TOKEN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("space", r"\s+"),
    ("datetime", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})"),
    ("bad_datetime", r"\d{4}-\d{2}-\d{2}T[\w:.+-]*"),
    ("date", r"\d{4}-\d{2}-\d{2}(?![\w:])"),
    ("number", r"[+-]?\d+(?:\.\d+)?(?![\w.])"),
    ("name", r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"),
    ("operator", r"!=|<>|<=|>=|=|<|>"),
    ("comma", r","),
    ("quote", r"'"),
)
_TOKEN_RE = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _TOKEN_PATTERNS))

_STRING_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}

_UNSUPPORTED_HINTS = {
    "OR": "only AND joins conditions",
    "NOT": "only AND joins conditions",
    "IN": "use = comparisons",
    "LIKE": "use = comparisons",
    "INCLUDES": "use = comparisons",
    "EXCLUDES": "use = comparisons",
    "GROUP": "aggregation is not supported",
    "HAVING": "aggregation is not supported",
    "OFFSET": "OFFSET is not supported",
    "TYPEOF": "TYPEOF is not supported",
    "WITH": "WITH is not supported",
    "FOR": "FOR clauses are not supported",
    "USING": "USING SCOPE is not supported",
    "(": "functions, subqueries and parentheses are not supported",
    ")": "functions, subqueries and parentheses are not supported",
}


@dataclass(frozen=True)
class Token:
    """A lexical token of a SOQL query."""
    kind: str  # datetime, date, number, name, operator, comma, string, unknown (a stray character), end
    text: str  # as written (for a string: the decoded value)
    column: int  # 1-based, for messages

    @property
    def keyword(self) -> str:
        """The token's text upper-cased when it is a name (SOQL keywords are case-insensitive), else ''."""
        return self.text.upper() if self.kind == "name" else ""


def tokenize(soql: str) -> list[Token]:
    """The tokens of `soql`, ending with an `end` token."""
    tokens: list[Token] = []
    position = 0
    while position < len(soql):
        match = _TOKEN_RE.match(soql, position)
        if match is None:
            # Left for the parser to reject, so errors are reported in reading order.
            tokens.append(Token("unknown", soql[position], position + 1))
            position += 1
            continue
        kind = match.lastgroup or ""
        if kind == "bad_datetime":
            raise SoqlError(
                MALFORMED_QUERY,
                f"invalid datetime literal '{match.group()}' at column {position + 1} "
                "(write e.g. 2025-11-21T08:15:00Z: seconds and a zone are required)",
            )
        if kind == "quote":
            value, position = _read_string(soql, position)
            tokens.append(Token("string", value, match.start() + 1))
            continue
        if kind != "space":
            tokens.append(Token(kind, match.group(), match.start() + 1))
        position = match.end()
    tokens.append(Token("end", "", len(soql) + 1))
    return tokens


def _read_string(soql: str, start: int) -> tuple[str, int]:
    """The decoded string literal opening at `start` (a quote) and the position after it."""
    chars: list[str] = []
    position = start + 1
    while position < len(soql):
        char = soql[position]
        if char == "'":
            return "".join(chars), position + 1
        if char == "\\":
            escaped = soql[position + 1 : position + 2]
            if escaped not in _STRING_ESCAPES:
                raise SoqlError(
                    MALFORMED_QUERY,
                    f"invalid escape sequence '\\{escaped}' in string literal at column {position + 1}",
                )
            chars.append(_STRING_ESCAPES[escaped])
            position += 2
            continue
        chars.append(char)
        position += 1
    raise SoqlError(MALFORMED_QUERY, f"unterminated string literal at column {start + 1}: {soql[start:]}")


def _unexpected(token: Token) -> SoqlError:
    if token.kind == "end":
        return SoqlError(MALFORMED_QUERY, "unexpected end of query")
    hint = _UNSUPPORTED_HINTS.get(token.keyword or token.text)
    suffix = f" ({hint})" if hint else ""
    return SoqlError(MALFORMED_QUERY, f"unexpected token: '{token.text}' at column {token.column}{suffix}")


# --- syntax tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A WHERE comparison as parsed: field path, operator, literal."""
    path: str
    op: str  # one of = != < <= > >= (<> is read as !=)
    literal: Any  # str, date, datetime, int, float, bool or None
    column: int


@dataclass(frozen=True)
class Ordering:
    """An ORDER BY item as parsed."""
    path: str
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class SoqlQuery:
    """A parsed SOQL query (the subset the pipeline sends)."""
    object_name: str
    fields: tuple[str, ...]
    where: tuple[Comparison, ...]
    order_by: tuple[Ordering, ...]
    limit: int | None


class _Parser:
    def __init__(self, soql: str) -> None:
        self._tokens = tokenize(soql)
        self._index = 0

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _take(self) -> Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _accept(self, keyword: str) -> bool:
        if self._peek().keyword == keyword:
            self._index += 1
            return True
        return False

    def _expect(self, keyword: str) -> None:
        if not self._accept(keyword):
            raise _unexpected(self._peek())

    def _name(self) -> str:
        token = self._take()
        if token.kind != "name" or token.keyword in _RESERVED:
            raise _unexpected(token)
        return token.text

    def query(self) -> SoqlQuery:
        self._expect("SELECT")
        fields = [self._name()]
        while self._peek().kind == "comma":
            self._take()
            fields.append(self._name())
        self._expect("FROM")
        object_name = self._name()
        if "." in object_name:
            raise _unexpected(self._tokens[self._index - 1])
        where = self._where() if self._accept("WHERE") else []
        order_by = self._order_by() if self._accept("ORDER") else []
        limit = self._limit() if self._accept("LIMIT") else None
        if self._peek().kind != "end":
            raise _unexpected(self._peek())
        return SoqlQuery(object_name, tuple(fields), tuple(where), tuple(order_by), limit)

    def _where(self) -> list[Comparison]:
        conditions = [self._comparison()]
        while self._accept("AND"):
            conditions.append(self._comparison())
        return conditions

    def _comparison(self) -> Comparison:
        path = self._name()
        token = self._take()
        if token.kind != "operator":
            raise _unexpected(token)
        op = "!=" if token.text == "<>" else token.text
        literal_token = self._peek()
        literal = self._literal()
        if literal is None and op not in ("=", "!="):
            raise SoqlError(
                MALFORMED_QUERY, f"null can only be compared with = or != (column {literal_token.column}: {op} null)"
            )
        return Comparison(path, op, literal, literal_token.column)

    def _literal(self) -> Any:
        token = self._take()
        if token.kind == "string":
            return token.text
        if token.kind == "datetime":
            return parse_datetime(token.text)
        if token.kind == "date":
            return parse_date(token.text)
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.keyword in ("TRUE", "FALSE"):
            return token.keyword == "TRUE"
        if token.keyword == "NULL":
            return None
        raise _unexpected(token)

    def _order_by(self) -> list[Ordering]:
        self._expect("BY")
        orderings = [self._ordering()]
        while self._peek().kind == "comma":
            self._take()
            orderings.append(self._ordering())
        return orderings

    def _ordering(self) -> Ordering:
        path = self._name()
        descending = self._accept("DESC")
        if not descending:
            self._accept("ASC")
        nulls_first = not descending  # Salesforce's default
        if self._accept("NULLS"):
            if self._accept("FIRST"):
                nulls_first = True
            else:
                self._expect("LAST")
                nulls_first = False
        return Ordering(path, descending, nulls_first)

    def _limit(self) -> int:
        token = self._take()
        if token.kind != "number" or not token.text.isdigit():
            raise _unexpected(token)
        return int(token.text)


# Words that end a field list or condition; a field named like one would be ambiguous.
_RESERVED = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "ORDER", "BY", "ASC", "DESC", "NULLS", "LIMIT", "TRUE", "FALSE", "NULL"}
    | {keyword for keyword in _UNSUPPORTED_HINTS if keyword.isalpha()}
)


def parse(soql: str) -> SoqlQuery:
    """The syntax tree of `soql`; a `SoqlError` (MALFORMED_QUERY) names what is not understood."""
    try:
        return _Parser(soql).query()
    except SoqlError:
        raise
    except ValueError as exc:  # a date/datetime literal shaped right but not a real day or time
        raise SoqlError(MALFORMED_QUERY, str(exc)) from exc


# --- binding to describe metadata ------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    """A resolved path: the reference fields followed (`hops`), then the field read."""

    text: str  # canonical spelling, e.g. "Product2.ProductCode"
    hops: tuple[FieldSpec, ...]
    field: FieldSpec


# Given a reference field and the id it holds, the referenced record (or None).
Follow = Callable[[FieldSpec, str], Record | None]


def read_path(path: FieldPath, record: Record, follow: Follow) -> Any:
    """The value of `path` on `record`, following relationships through `follow`."""
    current: Record | None = record
    for hop in path.hops:
        parent_id = current.get(hop.name)
        current = follow(hop, parent_id) if parent_id is not None else None
        if current is None:
            return None
    return current.get(path.field.name)


@dataclass(frozen=True)
class BoundComparison:
    """A WHERE comparison bound to the object's schema."""
    path: FieldPath
    op: str
    literal: Any


@dataclass(frozen=True)
class BoundOrdering:
    """An ORDER BY item bound to the object's schema."""
    path: FieldPath
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class BoundQuery:
    """A query bound to its object's schema, ready to run against the store."""
    soql: str
    schema: ObjectSchema
    fields: tuple[FieldPath, ...]
    where: tuple[BoundComparison, ...]
    order_by: tuple[BoundOrdering, ...]
    limit: int | None


def bind(soql: str, schemas: Mapping[str, ObjectSchema]) -> BoundQuery:
    """Parse `soql` and resolve its object, fields and literals against `schemas` (keyed by object name)."""
    query = parse(soql)
    schema = _find_object(query.object_name, schemas)
    fields = tuple(_resolve(schema, text, schemas) for text in query.fields)
    seen: set[str] = set()
    for path in fields:
        if path.text.lower() in seen:
            raise SoqlError(MALFORMED_QUERY, f"duplicate field selected: {path.text}")
        seen.add(path.text.lower())
    where = tuple(_bind_comparison(schema, condition, schemas) for condition in query.where)
    order_by = tuple(
        BoundOrdering(_resolve(schema, item.path, schemas), item.descending, item.nulls_first)
        for item in query.order_by
    )
    return BoundQuery(soql, schema, fields, where, order_by, query.limit)


def _find_object(name: str, schemas: Mapping[str, ObjectSchema]) -> ObjectSchema:
    for schema in schemas.values():
        if schema.name.lower() == name.lower():
            return schema
    raise SoqlError(
        INVALID_TYPE,
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name.",
    )


def _resolve(schema: ObjectSchema, text: str, schemas: Mapping[str, ObjectSchema]) -> FieldPath:
    *relationships, field_name = text.split(".")
    hops: list[FieldSpec] = []
    current = schema
    for name in relationships:
        hop = current.relationship(name)
        if hop is None or hop.reference_to not in schemas:
            raise SoqlError(
                INVALID_FIELD,
                f"Didn't understand relationship '{name}' in field path '{text}' on entity '{current.name}'.",
            )
        hops.append(hop)
        current = schemas[hop.reference_to]
    spec = current.field(field_name)
    if spec is None:
        raise SoqlError(INVALID_FIELD, f"No such column '{field_name}' on entity '{current.name}'.")
    canonical = ".".join([*(hop.relationship_name or "" for hop in hops), spec.name])
    return FieldPath(canonical, tuple(hops), spec)


_LITERAL_KINDS: dict[str, tuple[str, bool]] = {
    # field type group → (type named in the message, whether the literal is quoted)
    "text": ("string", True),
    FieldType.DATE: ("date", False),
    FieldType.DATETIME: ("dateTime", False),
    "number": ("number", False),
    FieldType.BOOLEAN: ("boolean", False),
}


def _type_group(field_type: FieldType) -> str:
    if field_type in TEXT_TYPES:
        return "text"
    if field_type in NUMBER_TYPES:
        return "number"
    return field_type


def _literal_fits(group: str, literal: Any) -> bool:
    if group == "text":
        return isinstance(literal, str)
    if group == "number":
        return isinstance(literal, (int, float)) and not isinstance(literal, bool)
    if group == FieldType.DATETIME:
        return isinstance(literal, datetime)
    if group == FieldType.DATE:
        return isinstance(literal, date) and not isinstance(literal, datetime)
    return isinstance(literal, bool)


def _bind_comparison(
    schema: ObjectSchema, condition: Comparison, schemas: Mapping[str, ObjectSchema]
) -> BoundComparison:
    path = _resolve(schema, condition.path, schemas)
    group = _type_group(path.field.type)
    if condition.literal is not None and not _literal_fits(group, condition.literal):
        type_name, quoted = _LITERAL_KINDS[group]
        raise SoqlError(
            INVALID_FIELD,
            f"value of filter criterion for field '{path.text}' must be of type {type_name} and should "
            f"{'' if quoted else 'not '}be enclosed in quotes (column {condition.column})",
        )
    literal = condition.literal.casefold() if group == "text" and condition.literal is not None else condition.literal
    return BoundComparison(path, condition.op, literal)


# --- evaluation ------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _comparable(path: FieldPath, value: Any) -> Any:
    """Text compares and sorts case-insensitively in Salesforce."""
    return value.casefold() if value is not None and path.field.type in TEXT_TYPES else value


def _predicate(condition: BoundComparison, follow: Follow) -> Callable[[Record], bool]:
    compare = _OPERATORS[condition.op]
    path, literal = condition.path, condition.literal

    def matches(record: Record) -> bool:
        value = read_path(path, record, follow)
        if value is None or literal is None:
            # null equals only null; != holds whenever exactly one side is null; ordering never holds
            if condition.op in ("=", "!="):
                return compare(value is None, literal is None)
            return False
        return compare(_comparable(path, value), literal)

    return matches


def execute(query: BoundQuery, records: Iterable[Record], follow: Follow) -> list[Record]:
    """The records matching every WHERE condition, in ORDER BY order, cut at LIMIT.

    Without ORDER BY the input order is kept. Sorting is stable, one key at a time from the
    last, so each key keeps its own direction and null placement.
    """
    predicates = [_predicate(condition, follow) for condition in query.where]
    selected = [record for record in records if all(matches(record) for matches in predicates)]
    for ordering in reversed(query.order_by):
        selected.sort(key=_sort_key(ordering, follow), reverse=ordering.descending)
    return selected if query.limit is None else selected[: query.limit]


def _sort_key(ordering: BoundOrdering, follow: Follow) -> Callable[[Record], tuple[bool, Any]]:
    # The leading flag places nulls before or after the values; sort(reverse=True) for DESC
    # flips that placement too, hence the comparison with `descending`.
    nulls_after = ordering.nulls_first == ordering.descending

    def key(record: Record) -> tuple[bool, Any]:
        value = _comparable(ordering.path, read_path(ordering.path, record, follow))
        return ((value is None) == nulls_after, value)

    return key
