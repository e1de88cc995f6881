"""The Salesforce API surface the local server answers, as request → response functions.

* `POST /services/Soap/u/{version}`: SOAP partner `login` (username, password + security
  token); answers a loginResponse whose serverUrl points at this server, or an
  INVALID_LOGIN SOAP fault (HTTP 500), like Salesforce.
* `GET /services/data/`: the API versions list (no session needed).
* Under `/services/data/v{version}/`, with `Authorization: Bearer <session id>`:
  - `query?q=` / `queryAll?q=` (trailing slash optional): SOQL (see `soql`), `query`
    without soft-deleted rows, `queryAll` with them; pages of `query_page_size` records,
    more pages at `nextRecordsUrl` (`/services/data/vXX.X/query/01g...-<offset>`);
  - `sobjects` and `sobjects/{Object}/describe`: describe metadata (404 NOT_FOUND for an
    unknown object);
  - `jobs/query` (POST, operation query|queryAll), `jobs/query/{id}` (GET state), and
    `jobs/query/{id}/results?maxRecords=&locator=`: Bulk API 2.0 query jobs, results as
    CSV pages with `Sforce-Locator` (`null` on the last page) and `Sforce-NumberOfRecords`.

A missing, unknown or expired session gets 401 `INVALID_SESSION_ID`. Errors are JSON arrays
`[{"message": ..., "errorCode": ...}]`, as Salesforce sends them. Query results are taken
when the query runs (a cursor or Bulk job keeps its snapshot), so later writes do not
shift the pages being read.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from cs_pipeline_testing.salesforce_server.faults import (
    HTTP_FAULTS,
    Fault,
    FaultInjector,
    FaultKind,
    RecordedRequest,
    RequestLog,
)
from cs_pipeline_testing.salesforce_server.rendering import (
    COLUMN_DELIMITERS,
    LINE_ENDINGS,
    RestRecordRenderer,
    bulk_csv_page,
    rest_datetime,
)
from cs_pipeline_testing.salesforce_server.schema import Record
from cs_pipeline_testing.salesforce_server.soql import BoundQuery, SoqlError, bind
from cs_pipeline_testing.salesforce_server.store import SalesforceStore, salesforce_id

ORG_ID = salesforce_id("00D", 1)
USER_ID = salesforce_id("005", 1)
API_VERSIONS = ("58.0", "59.0", "60.0", "61.0", "62.0", "63.0")

JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "text/xml;charset=UTF-8"
CSV_TYPE = "text/csv"


@dataclass
class ApiConfig:
    """The org's credentials and paging; change fields on a running server to affect later requests."""

    username: str = "integration@example.com"
    password: str = "local-password"
    security_token: str = "LocalSecurityToken0"
    query_page_size: int = 2000  # records per REST query page (Salesforce's default batch)
    bulk_max_records: int | None = None  # server cap on rows per Bulk results page, below the client's maxRecords
    bulk_in_progress_polls: int = 0  # job status polls answered InProgress before the final state


@dataclass
class Request:
    """An HTTP request as the API handlers see it."""
    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    """An HTTP response a handler returns."""
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def error_response(status: int, error_code: str, message: str) -> Response:
    """A Salesforce-style error body (a list of message and errorCode) with `status`."""
    return Response(status, json.dumps([{"message": message, "errorCode": error_code}]).encode())


def json_response(payload: Any, status: int = 200) -> Response:
    """`payload` as a JSON response."""
    return Response(status, json.dumps(payload).encode())


def _not_found() -> Response:
    return error_response(404, "NOT_FOUND", "The requested resource does not exist")


class SessionRegistry:
    """Session ids the org accepts: issued by SOAP login or registered up front."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._valid: set[str] = set()

    def issue(self) -> str:
        """A new valid session id, shaped like Salesforce's (org id prefix)."""
        session_id = f"{ORG_ID[:15]}!{secrets.token_urlsafe(40)}"
        self.register(session_id)
        return session_id

    def register(self, session_id: str) -> None:
        """Accept `session_id` from now on."""
        with self._lock:
            self._valid.add(session_id)

    def expire_all(self) -> None:
        """Invalidate every session: the next call gets INVALID_SESSION_ID, as after an expiry."""
        with self._lock:
            self._valid.clear()

    def is_valid(self, session_id: str) -> bool:
        """Whether `session_id` is accepted."""
        with self._lock:
            return session_id in self._valid


@dataclass
class _QueryCursor:
    query: BoundQuery
    records: list[Record]


@dataclass
class _BulkJob:
    id: str
    operation: str
    query: BoundQuery
    records: list[Record]
    column_delimiter: str
    line_ending: str
    api_version: str
    created: datetime
    failure_message: str | None
    state: str = "UploadComplete"
    polls: int = 0

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.query.schema.name,
            "createdById": USER_ID,
            "createdDate": rest_datetime(self.created),
            "systemModstamp": rest_datetime(self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if self.state == "JobComplete":
            info["numberRecordsProcessed"] = len(self.records)
        if self.state == "Failed":
            info["errorMessage"] = self.failure_message
        return info


Handler = Callable[[Request, "re.Match[str]", RecordedRequest], Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    authenticated: bool


_DATA = r"/services/data/v(?P<version>\d+\.\d+)"


class SalesforceApi:
    """The REST, SOAP login and Bulk API 2.0 endpoints over a store, with faults and a request log."""
    def __init__(
        self,
        store: SalesforceStore,
        config: ApiConfig,
        sessions: SessionRegistry,
        faults: FaultInjector,
        log: RequestLog,
    ) -> None:
        self.store = store
        self.config = config
        self.sessions = sessions
        self.faults = faults
        self.log = log
        self.instance_url = ""  # set by the server once its port is known; login's serverUrl points here
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._cursors: dict[str, _QueryCursor] = {}
        self._jobs: dict[str, _BulkJob] = {}
        self._routes = (
            _Route("POST", re.compile(r"/services/Soap/u/(?P<version>\d+\.\d+)/?"), self._soap_login, False),
            _Route("GET", re.compile(r"/services/data/?"), self._versions, False),
            _Route("GET", re.compile(_DATA + r"/(?:query|queryAll)/(?P<cursor>01g\w+)-(?P<offset>\d+)"),
                   self._query_more, True),
            _Route("GET", re.compile(_DATA + r"/(?P<endpoint>query|queryAll)/?"), self._query, True),
            _Route("GET", re.compile(_DATA + r"/sobjects/?"), self._describe_global, True),
            _Route("GET", re.compile(_DATA + r"/sobjects/(?P<object>\w+)/describe/?"), self._describe, True),
            _Route("POST", re.compile(_DATA + r"/jobs/query/?"), self._create_job, True),
            _Route("GET", re.compile(_DATA + r"/jobs/query/(?P<job>\w+)/?"), self._job_status, True),
            _Route("GET", re.compile(_DATA + r"/jobs/query/(?P<job>\w+)/results/?"), self._job_results, True),
        )  # fmt: skip

    def handle(self, request: Request) -> Response | None:
        """The response to `request`, or None: close the connection without answering."""
        entry = self.log.record(request.method, request.path, request.query_string)
        response = self._respond(request, entry)
        entry.status = response.status if response is not None else None
        return response

    def _respond(self, request: Request, entry: RecordedRequest) -> Response | None:
        fault = self.faults.take(HTTP_FAULTS, request.path)
        if fault is not None:
            return _fault_response(fault)
        matching = [(route, match) for route in self._routes if (match := route.pattern.fullmatch(request.path))]
        if not matching:
            return _not_found()
        route, match = next(((r, m) for r, m in matching if r.method == request.method), (None, None))
        if route is None or match is None:
            return error_response(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed")
        if route.authenticated:
            denial = self._authenticate(request)
            if denial is not None:
                return denial
        try:
            return route.handler(request, match, entry)
        except SoqlError as exc:
            return error_response(400, exc.error_code, exc.message)

    def _authenticate(self, request: Request) -> Response | None:
        if self.faults.take(frozenset({FaultKind.EXPIRE_SESSIONS}), request.path) is not None:
            self.sessions.expire_all()
        scheme, _, session_id = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.sessions.is_valid(session_id.strip()):
            return error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            return salesforce_id(prefix, next(self._ids))

    # --- SOAP login ---

    def _soap_login(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        try:
            envelope = ElementTree.fromstring(request.body)
        except ElementTree.ParseError as exc:
            return _soap_fault("UNKNOWN_EXCEPTION", f"The login request is not a SOAP envelope: {exc}")
        # simple-salesforce sends the password and security token concatenated in <password>.
        values = {element.tag.rpartition("}")[2]: element.text or "" for element in envelope.iter()}
        username, password = values.get("username", ""), values.get("password", "")
        expected_password = self.config.password + self.config.security_token
        if username.casefold() != self.config.username.casefold() or password != expected_password:
            return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        version = match["version"]
        return Response(200, _login_response(self.instance_url, version, self.sessions.issue()).encode(), XML_TYPE)

    # --- REST ---

    def _versions(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        return json_response(
            [
                {"label": f"v{version}", "url": f"/services/data/v{version}", "version": version}
                for version in API_VERSIONS
            ]
        )

    def _query(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        soql = parse_qs(request.query_string).get("q", [""])[0]
        if not soql.strip():
            return error_response(400, "MALFORMED_QUERY", "A query string has to be specified")
        entry.soql = soql
        query = bind(soql, self.store.schemas)
        records = self.store.query(query, include_deleted=match["endpoint"] == "queryAll")
        return self._query_page(self._next_id("01g"), _QueryCursor(query, records), 0, match["version"])

    def _query_more(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        with self._lock:
            cursor = self._cursors.get(match["cursor"])
        if cursor is None or int(match["offset"]) > len(cursor.records):
            return error_response(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._query_page(match["cursor"], cursor, int(match["offset"]), match["version"])

    def _query_page(self, cursor_id: str, cursor: _QueryCursor, offset: int, version: str) -> Response:
        page = cursor.records[offset : offset + self.config.query_page_size]
        next_offset = offset + len(page)
        done = next_offset >= len(cursor.records)
        payload: dict[str, Any] = {"totalSize": len(cursor.records), "done": done}
        with self._lock:
            if done:
                self._cursors.pop(cursor_id, None)
            else:
                self._cursors[cursor_id] = cursor
                payload["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor_id}-{next_offset}"
        renderer = RestRecordRenderer(cursor.query, self.store.follow, version)
        payload["records"] = [renderer.render(record) for record in page]
        return json_response(payload)

    def _describe_global(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        sobjects = [
            {
                "name": schema.name,
                "label": schema.label,
                "keyPrefix": schema.key_prefix,
                "custom": schema.name.endswith("__c"),
                "queryable": True,
                "urls": {"describe": f"/services/data/v{match['version']}/sobjects/{schema.name}/describe"},
            }
            for schema in self.store.schemas.values()
        ]
        return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})

    def _describe(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        try:
            schema = self.store.schema(match["object"])
        except KeyError:
            return _not_found()
        return json_response(schema.describe())

    # --- Bulk API 2.0 query jobs ---

    def _create_job(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        try:
            spec = json.loads(request.body or b"{}")
        except ValueError as exc:
            return error_response(400, "JSON_PARSER_ERROR", f"Unable to parse the job request: {exc}")
        if not isinstance(spec, dict):
            return error_response(400, "JSON_PARSER_ERROR", "The job request must be a JSON object")
        operation = spec.get("operation")
        delimiter = spec.get("columnDelimiter", "COMMA")
        line_ending = spec.get("lineEnding", "LF")
        if operation not in ("query", "queryAll"):
            return error_response(400, "INVALIDJOB", f"Invalid operation for a query job: {operation!r}")
        if delimiter not in COLUMN_DELIMITERS or line_ending not in LINE_ENDINGS:
            return error_response(
                400, "INVALIDJOB", f"Unsupported columnDelimiter/lineEnding: {delimiter}/{line_ending}"
            )
        soql = spec.get("query") or ""
        entry.soql = soql
        query = bind(soql, self.store.schemas)
        records = self.store.query(query, include_deleted=operation == "queryAll")
        failure = self.faults.take(frozenset({FaultKind.BULK_JOB_FAILED}), request.path)
        job = _BulkJob(
            id=self._next_id("750"),
            operation=operation,
            query=query,
            records=records,
            column_delimiter=delimiter,
            line_ending=line_ending,
            api_version=match["version"],
            created=self.store.clock.now(),
            failure_message=(failure.message or "InternalServerError : Failed to process query") if failure else None,
        )
        with self._lock:
            self._jobs[job.id] = job
        return json_response(job.info())

    def _job_status(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        with self._lock:
            job = self._jobs.get(match["job"])
            if job is None:
                return _not_found()
            if job.state in ("UploadComplete", "InProgress"):
                job.polls += 1
                if job.polls <= self.config.bulk_in_progress_polls:
                    job.state = "InProgress"
                else:
                    job.state = "Failed" if job.failure_message else "JobComplete"
            return json_response(job.info())

    def _job_results(self, request: Request, match: re.Match[str], entry: RecordedRequest) -> Response:
        with self._lock:
            job = self._jobs.get(match["job"])
        if job is None:
            return _not_found()
        if job.state != "JobComplete":
            return error_response(400, "INVALIDJOBSTATE", f"Job {job.id} is {job.state}, not JobComplete")
        params = parse_qs(request.query_string)
        offset = _decode_locator(params.get("locator", [""])[0])
        max_records = params.get("maxRecords", [""])[0]
        if offset is None or offset > len(job.records):
            return error_response(400, "INVALIDLOCATOR", f"Invalid locator: {params.get('locator', [''])[0]}")
        if max_records and (not max_records.isdigit() or int(max_records) == 0):
            return error_response(400, "INVALIDJOB", f"maxRecords must be a positive integer, not {max_records}")
        page_size = int(max_records) if max_records else len(job.records)
        if self.config.bulk_max_records:
            page_size = min(page_size, self.config.bulk_max_records)
        page = job.records[offset : offset + page_size]
        next_offset = offset + len(page)
        body = bulk_csv_page(
            job.query,
            page,
            self.store.follow,
            COLUMN_DELIMITERS[job.column_delimiter],
            LINE_ENDINGS[job.line_ending],
        )
        headers = {
            "Sforce-Locator": _encode_locator(next_offset) if next_offset < len(job.records) else "null",
            "Sforce-NumberOfRecords": str(len(page)),
        }
        return Response(200, body.encode(), CSV_TYPE, headers)


def _encode_locator(offset: int) -> str:
    # Salesforce's locators are opaque; base64 of the offset is what they look like too.
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int | None:
    if not locator:
        return 0
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _fault_response(fault: Fault) -> Response | None:
    if fault.kind == FaultKind.CONNECTION_RESET:
        return None
    if fault.kind == FaultKind.RATE_LIMITED:
        return error_response(429, "TOO_MANY_REQUESTS", fault.message or "Too many requests. Retry later.")
    if fault.kind == FaultKind.REQUEST_LIMIT_EXCEEDED:
        return error_response(403, "REQUEST_LIMIT_EXCEEDED", fault.message or "TotalRequests Limit exceeded.")
    if fault.status == 503:
        return error_response(503, "SERVER_UNAVAILABLE", fault.message or "Server temporarily unavailable.")
    return error_response(
        500,
        "UNKNOWN_EXCEPTION",
        fault.message
        or "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1234567890-12345 (-1234567890)",
    )


def _login_response(instance_url: str, version: str, session_id: str) -> str:
    server_url = f"{instance_url}/services/Soap/u/{version}/{ORG_ID[:15]}"
    metadata_url = f"{instance_url}/services/Soap/m/{version}/{ORG_ID[:15]}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><loginResponse><result>"
        f"<metadataServerUrl>{escape(metadata_url)}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{escape(server_url)}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId>"
        f"<userId>{USER_ID}</userId>"
        f"<userInfo><organizationId>{ORG_ID}</organizationId><userId>{USER_ID}</userId>"
        f"<sessionSecondsValid>7200</sessionSecondsValid></userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, body.encode(), XML_TYPE)
