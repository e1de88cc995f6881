"""Fault injection and request recording for the local Salesforce server.

`FaultInjector.inject(kind, times=n, path_contains=...)` arms a fault that the next `n`
matching requests consume, one each:

* `server_error`: HTTP 500 (or `status=503`) with a Salesforce-style JSON error body;
* `rate_limited`: HTTP 429;
* `connection_reset`: the socket is closed (TCP reset) without any response;
* `request_limit_exceeded`: HTTP 403 `REQUEST_LIMIT_EXCEEDED`, the daily API limit answer;
* `expire_sessions`: every issued session becomes invalid just before an authenticated
  request is served, so it gets 401 INVALID_SESSION_ID (a new SOAP login works again);
* `bulk_job_failed`: the next Bulk API 2.0 query job created ends in state Failed with
  `message` as its errorMessage.

`path_contains` restricts a fault to request paths containing that text (e.g. "/jobs/query",
"/query/", "/services/Soap"). The first four apply to any request, the SOAP login included.

`RequestLog` keeps every request the server got: method, path, query string, the SOQL it
carried (REST `q` or Bulk job body) and the status answered (None for a reset connection).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qs


class FaultKind(str, Enum):
    """The failures the server can be told to inject."""
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    CONNECTION_RESET = "connection_reset"
    REQUEST_LIMIT_EXCEEDED = "request_limit_exceeded"
    EXPIRE_SESSIONS = "expire_sessions"
    BULK_JOB_FAILED = "bulk_job_failed"


# Faults that replace the response of whatever request they meet.
HTTP_FAULTS = frozenset(
    {FaultKind.SERVER_ERROR, FaultKind.RATE_LIMITED, FaultKind.CONNECTION_RESET, FaultKind.REQUEST_LIMIT_EXCEEDED}
)


@dataclass
class Fault:
    """An armed fault: its kind, how many more requests it hits, and the paths it applies to."""
    kind: FaultKind
    remaining: int
    path_contains: str | None
    status: int | None
    message: str | None


class FaultInjector:
    """Faults armed by a test, consumed by the requests they match."""
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []

    def inject(
        self,
        kind: FaultKind | str,
        times: int = 1,
        path_contains: str | None = None,
        *,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        """Arm `kind` for the next `times` matching requests.

        `status` picks the code of a server_error (500 or 503). `message` replaces the default
        error message (for bulk_job_failed: the job's errorMessage).
        """
        kind = FaultKind(kind)
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        if status is not None and (kind != FaultKind.SERVER_ERROR or status not in (500, 503)):
            raise ValueError("status is only for server_error, and must be 500 or 503")
        with self._lock:
            self._armed.append(Fault(kind, times, path_contains, status, message))

    def take(self, kinds: frozenset[FaultKind], path: str) -> Fault | None:
        """Consume one use of the earliest armed fault of `kinds` matching `path`, if any."""
        with self._lock:
            for fault in self._armed:
                if fault.kind in kinds and (fault.path_contains is None or fault.path_contains in path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._armed.remove(fault)
                    return fault
        return None

    def pending(self) -> int:
        """Uses left across all armed faults (0 once every injected fault has happened)."""
        with self._lock:
            return sum(fault.remaining for fault in self._armed)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()


@dataclass
class RecordedRequest:
    """A request the server received, for tests to inspect."""
    method: str
    path: str
    query_string: str
    status: int | None = None
    soql: str | None = None
    params: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.params = parse_qs(self.query_string, keep_blank_values=True)


class RequestLog:
    """Every request the server received, in order (thread-safe)."""
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RecordedRequest] = []

    def record(self, method: str, path: str, query_string: str) -> RecordedRequest:
        """Record a request and return its entry."""
        entry = RecordedRequest(method, path, query_string)
        with self._lock:
            self._entries.append(entry)
        return entry

    def entries(self, path_contains: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, optionally only those whose path contains `path_contains` and of `method`."""
        with self._lock:
            return [
                entry
                for entry in self._entries
                if (path_contains is None or path_contains in entry.path) and (method is None or entry.method == method)
            ]

    def count(self, path_contains: str | None = None, method: str | None = None) -> int:
        """How many recorded requests match (see entries)."""
        return len(self.entries(path_contains, method))

    def counts_by_path(self) -> Counter[str]:
        """The number of recorded requests per path."""
        return Counter(entry.path for entry in self.entries())

    def soql(self) -> list[str]:
        """The SOQL of every query request and Bulk job creation, in arrival order."""
        return [entry.soql for entry in self.entries() if entry.soql is not None]

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._entries.clear()
