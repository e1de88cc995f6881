"""Salesforce as the CRM source (docs/data-model.md#salesforce-extraction): simple-salesforce over HTTPS, incremental.

Each mapped object is mirrored in the warehouse (`salesforce_account`, `salesforce_asset`,
`salesforce_contact`: one text column per Salesforce field, as the CSV exports have them),
and `salesforce_sync` keeps one bookmark per object. A sync asks for the records with
`SystemModstamp >= bookmark - overlap` through `queryAll` (deleted ones included), upserts
the live ones, removes the deleted ones, and moves the bookmark in the same transaction:
a run that fails anywhere leaves mirror and bookmark as they were. The CRM snapshot of a
day then reads the mirror (`SalesforceMirror`), exactly as it reads the CSV exports.

Transport: REST `query`/`queryAll` pages through `nextRecordsUrl`; above `bulk_threshold`
records (the first page's totalSize) a Bulk API 2.0 `queryAll` job is used instead, paged by
`Sforce-Locator`. 5xx, 429 and connection errors are retried with exponential backoff (the
HTTP adapter); an expired session is re-established once (username/password login);
REQUEST_LIMIT_EXCEEDED stops the sync at once. Errors never carry a credential.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
import polars as pl
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from cs_pipeline.crm.sources import CrmSource, CrmSourceError
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import connect

T = TypeVar("T")

SYSTEM_FIELDS = ["Id", "SystemModstamp", "IsDeleted"]
NUMBER_TYPES = {"double", "currency", "percent"}
RETRIED_STATUSES = (429, 500, 502, 503, 504)


class SalesforceSourceError(CrmSourceError):
    """Salesforce refused or failed a request; the message names the object and the call."""


class RequestLimitExceeded(SalesforceSourceError):
    """The org's API request limit is used up: retrying now would only fail again."""


def mirror_table(object_name: str) -> str:
    """The warehouse table that mirrors a Salesforce object."""
    return f"salesforce_{object_name.lower()}"


class SalesforceResource(dg.ConfigurableResource):
    """A connection to Salesforce. Credentials come from environment variables only
    (see `salesforce_resource`): SF_INSTANCE_URL + SF_SESSION_ID, or SF_USERNAME +
    SF_PASSWORD + SF_SECURITY_TOKEN (+ SF_DOMAIN); SF_CA_BUNDLE and SF_PROXY are optional."""

    instance_url: str | None = None
    session_id: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    domain: str = "login"
    ca_bundle: str | None = None
    proxy: str | None = None
    api_version: str = "62.0"
    bulk_threshold: int = 10_000
    overlap_minutes: int = 10
    max_retries: int = 4
    backoff_seconds: float = 1.0
    bulk_poll_seconds: float = 2.0

    def open(self) -> SalesforceConnection:
        """A connection to the Salesforce org this resource names."""
        return SalesforceConnection(self)


def salesforce_resource(api_version: str, bulk_threshold: int, overlap_minutes: int) -> SalesforceResource:
    """The resource for the config's settings, its secrets as EnvVars (never values)."""
    present = {name for name in os.environ if name.startswith("SF_") and os.environ[name].strip()}
    if {"SF_INSTANCE_URL", "SF_SESSION_ID"} <= present:
        credentials = {"instance_url": dg.EnvVar("SF_INSTANCE_URL"), "session_id": dg.EnvVar("SF_SESSION_ID")}
    elif {"SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN"} <= present:
        credentials = {
            "username": dg.EnvVar("SF_USERNAME"),
            "password": dg.EnvVar("SF_PASSWORD"),
            "security_token": dg.EnvVar("SF_SECURITY_TOKEN"),
        }
    else:
        credentials = {}  # the first sync says which variables are missing
    optional = {"domain": "SF_DOMAIN", "ca_bundle": "SF_CA_BUNDLE", "proxy": "SF_PROXY"}
    settings = {field: dg.EnvVar(name) for field, name in optional.items() if name in present}
    return SalesforceResource(
        **credentials,
        **settings,
        api_version=api_version,
        bulk_threshold=bulk_threshold,
        overlap_minutes=overlap_minutes,
    )


class _Retry(Retry):
    """urllib3's retries, except for a SOAP login fault: Salesforce answers a wrong password
    with HTTP 500, and asking again would only bring the user closer to a lockout."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None) -> Retry:
        if response is not None and response.status == 500 and url and "/services/Soap/" in url:
            raise MaxRetryError(_pool, url, "SOAP fault")  # urllib3 then hands the fault to the client
        return super().increment(method, url, response, error, _pool, _stacktrace)


class SalesforceConnection:
    """One logged-in simple-salesforce client, with the error handling of the module docstring."""

    def __init__(self, resource: SalesforceResource) -> None:
        self._resource = resource
        self._secrets = [
            value
            for value in (resource.session_id, resource.password, resource.security_token)
            if value
        ]
        self._described: dict[str, dict[str, dict[str, Any]]] = {}
        self._client = self._login()

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE and proxy variables must not override ours
        if self._resource.ca_bundle:
            session.verify = self._resource.ca_bundle
        if self._resource.proxy:
            session.proxies = {"https": self._resource.proxy}
        retry = _Retry(
            total=self._resource.max_retries,
            backoff_factor=self._resource.backoff_seconds,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=None,  # queries are reads, whatever the verb (Bulk job creation is a POST)
            raise_on_status=False,  # the last answer reaches simple-salesforce, with Salesforce's message
            respect_retry_after_header=True,
        )
        session.mount("https://", HTTPAdapter(max_retries=retry))
        return session

    def _login(self) -> Salesforce:
        r = self._resource
        try:
            if r.session_id and r.instance_url:
                return Salesforce(
                    instance_url=r.instance_url, session_id=r.session_id, session=self._session(), version=r.api_version
                )
            if r.username and r.password and r.security_token:
                return Salesforce(
                    username=r.username,
                    password=r.password,
                    security_token=r.security_token,
                    domain=r.domain,
                    session=self._session(),
                    version=r.api_version,
                )
        except SalesforceAuthenticationFailed as exc:
            raise SalesforceSourceError(self._scrub(f"Salesforce login failed: {exc}")) from None
        except requests.RequestException as exc:
            raise SalesforceSourceError(self._scrub(f"Salesforce login failed: {type(exc).__name__}")) from None
        raise SalesforceSourceError(
            "no Salesforce credentials: set SF_INSTANCE_URL and SF_SESSION_ID, or SF_USERNAME, SF_PASSWORD "
            "and SF_SECURITY_TOKEN (crm.source is salesforce)"
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def call(self, what: str, request: Callable[[Salesforce], T]) -> T:
        """request(client), translated into SalesforceSourceError naming `what`; an expired
        session is re-established once when a username/password login is configured."""
        try:
            try:
                return request(self._client)
            except SalesforceExpiredSession:
                if not self._resource.username:
                    raise SalesforceSourceError(
                        f"{what}: the Salesforce session expired (set a fresh SF_SESSION_ID)"
                    ) from None
                self._client = self._login()
                return request(self._client)
        except SalesforceRefusedRequest as exc:
            if "REQUEST_LIMIT_EXCEEDED" in str(exc.content):
                raise RequestLimitExceeded(
                    f"{what}: Salesforce API request limit exceeded ({_salesforce_message(exc)}); "
                    "nothing was written and the bookmark is kept: run again once the limit resets"
                ) from None
            raise SalesforceSourceError(self._scrub(f"{what}: {_salesforce_message(exc)}")) from None
        except SalesforceError as exc:
            raise SalesforceSourceError(self._scrub(f"{what}: {_salesforce_message(exc)}")) from None
        except SalesforceOperationError as exc:  # a failed Bulk job, with Salesforce's errorMessage
            raise SalesforceSourceError(self._scrub(f"{what}: {exc}")) from None
        except requests.RequestException as exc:
            raise SalesforceSourceError(
                self._scrub(f"{what}: Salesforce could not be reached after retries ({type(exc).__name__})")
            ) from None

    # -- describe --------------------------------------------------------------------------

    def field_types(self, object_name: str, fields: list[str], optional_fields: list[str]) -> dict[str, str]:
        """Salesforce type of each requested field that exists (relationship paths such as
        Product2.ProductCode resolved through the reference field); a missing field of
        `fields` is an error naming it."""
        own = self._describe(object_name)
        types: dict[str, str] = {}
        missing = []
        for name in dict.fromkeys([*fields, *optional_fields]):
            field_type = self._field_type(object_name, own, name)
            if field_type is not None:
                types[name] = field_type
            elif name in fields:
                missing.append(name)
        if missing:
            raise SalesforceSourceError(
                f"Salesforce {object_name} has no field {', '.join(missing)} "
                "(mapped in the config's crm.mapping; check the name and the integration user's field access)"
            )
        return types

    def _describe(self, object_name: str) -> dict[str, dict[str, Any]]:
        """The object's fields by name, asked once per connection (several paths may cross
        the same relationship, e.g. Product2.ProductCode and Product2.Name)."""
        if object_name not in self._described:
            described = self.call(f"describe {object_name}", lambda sf: getattr(sf, object_name).describe())
            self._described[object_name] = {field["name"]: field for field in described["fields"]}
        return self._described[object_name]

    def _field_type(self, object_name: str, own: dict[str, dict[str, Any]], path: str) -> str | None:
        if "." not in path:
            return own[path]["type"] if path in own else None
        relationship, field = path.split(".", 1)
        reference = next((f for f in own.values() if f.get("relationshipName") == relationship), None)
        if reference is None or not reference.get("referenceTo") or "." in field:
            return None
        target = self._describe(reference["referenceTo"][0])
        return target[field]["type"] if field in target else None

    # -- query -----------------------------------------------------------------------------

    def query_records(self, object_name: str, soql: str, types: dict[str, str]) -> QueryResult:
        """Every record of a queryAll (deleted ones included), as text columns named by
        field path: REST pages, or a Bulk 2.0 job above bulk_threshold."""
        first = self.call(f"queryAll {object_name}", lambda sf: sf.query(soql, include_deleted=True))
        if first["totalSize"] > self._resource.bulk_threshold:
            return self._bulk_query(object_name, soql, types)
        pages = [first["records"]]
        page = first
        while not page["done"]:
            next_url = page["nextRecordsUrl"]
            page = self.call(
                f"queryAll {object_name} (next page)",
                lambda sf: sf.query_more(next_url, identifier_is_url=True, include_deleted=True),
            )
            pages.append(page["records"])
        records = [record for records in pages for record in records]
        return QueryResult(frame=_rest_frame(records, types), api="rest", pages=len(pages))

    def _bulk_query(self, object_name: str, soql: str, types: dict[str, str]) -> QueryResult:
        def run(sf: Salesforce) -> list[str]:
            job = getattr(sf.bulk2, object_name)
            return list(job.query_all(soql, wait=self._resource.bulk_poll_seconds))

        pages = self.call(f"Bulk 2.0 queryAll {object_name}", run)
        frames = [
            pl.read_csv(io.StringIO(page), infer_schema=False, columns=list(types)) for page in pages if page.strip()
        ]
        frame = pl.concat(frames) if frames else pl.DataFrame(schema={name: pl.String for name in types})
        return QueryResult(frame=_typed_text(frame, types), api="bulk", pages=len(pages))


@dataclass(frozen=True)
class QueryResult:
    """The records a SOQL query returned, and through which API, in how many pages."""
    frame: pl.DataFrame
    api: str  # rest | bulk
    pages: int


def _salesforce_message(exc: SalesforceError) -> str:
    """Salesforce's own error code and message, without the request URL."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return "; ".join(f"{item.get('errorCode', '')}: {item.get('message', '')}" for item in content)
    if not content:
        return f"HTTP {exc.status}"
    text = str(content)
    return re.sub(r"\s+", " ", text)[:500]


def _rest_frame(records: list[dict[str, Any]], types: dict[str, str]) -> pl.DataFrame:
    """REST records (relationships as nested objects, `attributes` everywhere) as text columns."""
    own = [name for name in types if "." not in name]
    related: dict[str, list[str]] = {}
    for path in types:
        if "." in path:
            relationship, field = path.split(".", 1)
            related.setdefault(relationship, []).append(field)
    schema = {name: pl.String for name in own} | {
        relationship: pl.Struct({field: pl.String for field in fields}) for relationship, fields in related.items()
    }
    frame = pl.from_dicts(records, schema=schema, strict=False) if records else pl.DataFrame(schema=schema)
    flat = frame.select(
        *own,
        *[
            pl.col(relationship).struct.field(field).alias(f"{relationship}.{field}")
            for relationship, fields in related.items()
            for field in fields
        ],
    )
    return _typed_text(flat.select(list(types)), types)


def _typed_text(frame: pl.DataFrame, types: dict[str, str]) -> pl.DataFrame:
    """One text form per Salesforce type, whichever API delivered the value: datetimes as
    2025-11-21T08:15:00.000+0000, numbers as decimals, booleans as true/false, blanks as null."""

    def canonical(name: str, field_type: str) -> pl.Expr:
        value = pl.col(name).str.strip_chars()
        value = pl.when(value == "").then(None).otherwise(value)
        if field_type == "datetime":
            return value.str.replace(r"Z$", "+0000")
        if field_type in NUMBER_TYPES:
            return value.cast(pl.Float64).cast(pl.String)
        if field_type == "int":
            return value.cast(pl.Float64).cast(pl.Int64).cast(pl.String)
        if field_type == "boolean":
            return value.str.to_lowercase()
        return value

    try:
        return frame.select(canonical(name, field_type).alias(name) for name, field_type in types.items())
    except pl.exceptions.InvalidOperationError as exc:
        raise SalesforceSourceError(f"Salesforce returned a value that does not fit its field type: {exc}") from None


# -- sync into the warehouse -----------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    """What one sync of a Salesforce object did to its mirror table."""
    object_name: str
    mode: str  # full | incremental
    api: str  # rest | bulk
    pages: int
    fetched: int  # records returned, deleted ones included
    upserted: int
    deleted: int
    rows: int  # live records now mirrored
    bookmark: datetime | None


def sync_object(
    connection: SalesforceConnection,
    con: duckdb.DuckDBPyConnection,
    *,
    object_name: str,
    fields: list[str],
    optional_fields: list[str],
    overlap_minutes: int,
    full_refresh: bool,
    run_id: str,
) -> SyncResult:
    """Bring the object's mirror up to date (see the module docstring)."""
    types = connection.field_types(object_name, [*SYSTEM_FIELDS, *fields], optional_fields)
    columns = list(types)
    table = mirror_table(object_name)
    state = con.execute(
        "SELECT fields, bookmark FROM salesforce_sync WHERE object = ?", [object_name]
    ).fetchall()
    # a new field list means the mirror lacks columns: fetch everything again
    full = full_refresh or not state or state[0][0] != columns or state[0][1] is None
    select = f"SELECT {', '.join(columns)} FROM {object_name}"
    if full:
        soql = select
    else:
        since = state[0][1] - timedelta(minutes=overlap_minutes)
        soql = f"{select} WHERE SystemModstamp >= {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    result = connection.query_records(object_name, soql, types)
    # one row per Id: the latest modification wins
    batch = (
        result.frame.with_columns(
            modstamp=pl.col("SystemModstamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC")
        )
        .sort("modstamp", nulls_last=False, maintain_order=True)
        .unique(subset="Id", keep="last", maintain_order=True)
    )
    live = batch.filter(pl.col("IsDeleted") != "true").select(columns)
    deleted_ids = batch.filter(pl.col("IsDeleted") == "true").select("Id")
    newest = batch["modstamp"].max()
    bookmark = newest if newest is not None else (None if full else state[0][1])
    column_list = ", ".join(quote_identifier(c) for c in columns)
    try:
        with transaction(con):
            con.register("salesforce_live", live.to_arrow())
            con.register("salesforce_deleted", deleted_ids.to_arrow())
            if full:
                definition = ", ".join(f"{quote_identifier(c)} VARCHAR" for c in columns)
                con.execute(f"CREATE OR REPLACE TABLE {table} ({definition}, run_id VARCHAR NOT NULL)")
                deleted = 0
            else:
                [(deleted,)] = con.execute(
                    f'SELECT count(*) FROM {table} WHERE "Id" IN (SELECT "Id" FROM salesforce_deleted)'
                ).fetchall()
                con.execute(
                    f'DELETE FROM {table} WHERE "Id" IN (SELECT "Id" FROM salesforce_live) '
                    'OR "Id" IN (SELECT "Id" FROM salesforce_deleted)'
                )
            con.execute(f"INSERT INTO {table} SELECT {column_list}, ? FROM salesforce_live", [run_id])
            con.execute("DELETE FROM salesforce_sync WHERE object = ?", [object_name])
            con.execute(
                "INSERT INTO salesforce_sync VALUES (?, ?, ?, now(), ?, ?)",
                [object_name, columns, bookmark, "full" if full else "incremental", run_id],
            )
            [(rows,)] = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    finally:
        con.unregister("salesforce_live")
        con.unregister("salesforce_deleted")
    return SyncResult(
        object_name=object_name,
        mode="full" if full else "incremental",
        api=result.api,
        pages=result.pages,
        fetched=result.frame.height,
        upserted=live.height,
        deleted=deleted,
        rows=rows,
        bookmark=bookmark,
    )


class SalesforceMirror(CrmSource):
    """The CRM source when crm.source is salesforce: the mirror tables the extraction
    assets keep in the warehouse."""

    warehouse_path: str

    def fetch(self, object_name: str, fields: list[str], optional_fields: list[str]) -> pl.DataFrame:
        """The mirrored records of `object_name`, with `fields` (and those of `optional_fields` it has)."""
        table = mirror_table(object_name)
        con = connect(Path(self.warehouse_path))
        try:
            present = {
                name
                for (name,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
                ).fetchall()
            }
            if not present:
                raise CrmSourceError(
                    f"no Salesforce {object_name} records in the warehouse ({table}): "
                    f"materialise the {table} asset first"
                )
            missing = [name for name in fields if name not in present]
            if missing:
                raise CrmSourceError(
                    f"{table} has no column {', '.join(missing)}: materialise {table} again "
                    "(the mapping changed since its last sync)"
                )
            wanted = list(dict.fromkeys([*fields, *optional_fields]))
            select = ", ".join(
                quote_identifier(name) if name in present else f"NULL::VARCHAR AS {quote_identifier(name)}"
                for name in wanted
            )
            return con.sql(f"SELECT {select} FROM {table}").pl()
        finally:
            con.close()
