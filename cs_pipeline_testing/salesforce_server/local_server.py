"""A local Salesforce org over HTTPS, for tests and demos of Salesforce clients.

The unmodified `simple-salesforce` client talks to it as to Salesforce: SOAP login with
username, password and security token, or an instance URL with a session id; SOQL through
REST `query`/`queryAll` with paging; `describe`; Bulk API 2.0 query jobs. `endpoints`
lists the emulated API, `soql` the SOQL subset, `store` the record semantics (typed
fields, server-kept Id/CreatedDate/SystemModstamp, soft delete), `faults` the failures a
test can inject.

Transport: an HTTPS server on 127.0.0.1 with a throwaway CA (trustme), whose certificate
also covers `localhost` and `*.salesforce.com`, plus a CONNECT proxy that tunnels any
target (the `login.salesforce.com` simple-salesforce logs in at) to it. Connecting:

    with LocalSalesforceServer() as server:
        server.store.load_csv_exports("demo/crm")
        sf = Salesforce(username=server.username, password=server.password,
                        security_token=server.security_token,
                        session=server.requests_session(), domain="login")
        # or: Salesforce(instance_url=server.instance_url, session_id=server.new_session_id(),
        #                session=server.requests_session())

`requests_session()` is a `requests.Session` with `trust_env = False`, `verify = ca_path`
and `proxies = {"https": proxy_url}`; a client building its own session sets the same.

Run `python -m cs_pipeline_testing.salesforce_server.local_server --crm-dir demo/crm` to serve the CSV
exports until Ctrl-C; it prints the URLs, the CA path and throwaway credentials.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import requests
import trustme

from cs_pipeline_testing.salesforce_server.endpoints import (
    ApiConfig,
    Request,
    SalesforceApi,
    SessionRegistry,
    error_response,
)
from cs_pipeline_testing.salesforce_server.faults import FaultInjector, RequestLog
from cs_pipeline_testing.salesforce_server.proxy import (
    SHUTDOWN_POLL_SECONDS,
    ConnectProxy,
    OpenSockets,
    QuietConnectionErrors,
    no_delay,
    reset,
)
from cs_pipeline_testing.salesforce_server.store import SalesforceStore

logger = logging.getLogger(__name__)

CERTIFICATE_NAMES = (
    "127.0.0.1",
    "localhost",
    "*.salesforce.com",
    "login.salesforce.com",
    "test.salesforce.com",
    "*.my.salesforce.com",
)
_CONNECTION_TIMEOUT_SECONDS = 60  # an idle keep-alive connection is dropped after this


class _TlsHttpServer(QuietConnectionErrors, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: SalesforceApi, tls_context: ssl.SSLContext) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self.tls_context = tls_context
        self.open_sockets = OpenSockets()

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        # The TLS handshake runs here, in the connection's own thread, so a slow or failing
        # client cannot hold up the accept loop; the connection is registered before it, so
        # that stopping the server ends a client silent in the handshake too.
        request.settimeout(_CONNECTION_TIMEOUT_SECONDS)
        no_delay(request)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except OSError:
            return
        if not self.open_sockets.add(tls):
            return
        try:
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError):
                return  # e.g. a client that does not trust the CA, or the server stopping; nothing to answer
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            self.open_sockets.discard(tls)
            tls.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests sessions expect
    server: _TlsHttpServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        path, _, query_string = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            response = self.server.api.handle(Request(self.command, path, query_string, headers, body))
        except Exception as exc:  # a bug here must reach the client as an error, not a hung request
            logger.exception("local Salesforce server failed on %s %s", self.command, self.path)
            response = error_response(500, "UNKNOWN_EXCEPTION", f"local server error: {exc!r}")
        if response is None:
            self._drop_connection()
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _drop_connection(self) -> None:
        self.close_connection = True
        reset(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the RequestLog records requests; access lines would only clutter test output


class LocalSalesforceServer:
    """The org: `store` (records), `config` (credentials, paging), `sessions`, `faults`,
    `request_log`; `start()`/`stop()` or a `with` block run it on free ports."""

    def __init__(
        self,
        store: SalesforceStore | None = None,
        config: ApiConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        proxy_port: int = 0,
    ) -> None:
        self.store = store or SalesforceStore()
        self.config = config or ApiConfig()
        self.sessions = SessionRegistry()
        self.faults = FaultInjector()
        self.request_log = RequestLog()
        self.api = SalesforceApi(self.store, self.config, self.sessions, self.faults, self.request_log)
        self._host, self._port, self._proxy_port = host, port, proxy_port
        self._ca = trustme.CA(organization_name="cs_pipeline local Salesforce (throwaway)")
        self._certificate = self._ca.issue_cert(*CERTIFICATE_NAMES)
        self._directory: Path | None = None
        self._https: _TlsHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._proxy: ConnectProxy | None = None

    # --- lifecycle ---

    def start(self) -> LocalSalesforceServer:
        """Start serving HTTPS (and the CONNECT proxy) on free ports; returns the server."""
        if self._https is not None:
            raise RuntimeError("the local Salesforce server is already running")
        self._directory = Path(tempfile.mkdtemp(prefix="local-salesforce-"))
        self._ca.cert_pem.write_to_path(str(self._directory / "ca.pem"))
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._certificate.configure_cert(tls_context)
        self._https = _TlsHttpServer((self._host, self._port), self.api, tls_context)
        https_port = self._https.server_address[1]
        self.api.instance_url = f"https://{self._host}:{https_port}"
        self._thread = threading.Thread(
            target=self._https.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name="salesforce-https", daemon=True
        )
        self._thread.start()
        self._proxy = ConnectProxy((self._host, https_port), self._host, self._proxy_port)
        self._proxy.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self._https is not None:
            self._https.shutdown()
            self._https.server_close()
            self._https.open_sockets.close_all()
            self._https = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> LocalSalesforceServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- how a client connects ---

    @property
    def instance_url(self) -> str:
        """`https://127.0.0.1:PORT`, the instance URL SOAP login also reports."""
        self._require_running()
        return self.api.instance_url

    @property
    def proxy_url(self) -> str:
        """`http://127.0.0.1:PORT2`, the CONNECT proxy to use for https (reaches login.salesforce.com)."""
        self._require_running()
        assert self._proxy is not None
        return self._proxy.url

    @property
    def ca_path(self) -> str:
        """PEM file of the throwaway CA that signed the server certificate (`session.verify = ca_path`)."""
        self._require_running()
        assert self._directory is not None
        return str(self._directory / "ca.pem")

    @property
    def proxy_tunnels(self) -> list[str]:
        """CONNECT targets the proxy tunnelled, e.g. ["login.salesforce.com:443", "127.0.0.1:PORT"]."""
        self._require_running()
        assert self._proxy is not None
        return self._proxy.tunnels

    @property
    def username(self) -> str:
        """The username the server accepts."""
        return self.config.username

    @property
    def password(self) -> str:
        """The password the server accepts."""
        return self.config.password

    @property
    def security_token(self) -> str:
        """The security token the server accepts."""
        return self.config.security_token

    def new_session_id(self) -> str:
        """A valid session id, for instance URL + session id authentication."""
        return self.sessions.issue()

    def requests_session(self) -> requests.Session:
        """A session that trusts the CA and tunnels https through the proxy (ignoring environment proxies)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_path
        session.proxies = {"https": self.proxy_url}
        return session

    def _require_running(self) -> None:
        if self._https is None:
            raise RuntimeError("the local Salesforce server is not running: call start() or use it in a with block")


# --- command line ------------------------------------------------------------------------


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = ApiConfig()
    parser = argparse.ArgumentParser(
        prog="python -m cs_pipeline_testing.salesforce_server.local_server",
        description="Serve CRM CSV exports as a local Salesforce org (HTTPS, throwaway CA) until interrupted.",
    )
    parser.add_argument("--crm-dir", type=Path, help="directory of <Object>.csv exports (Account.csv, ...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: a free one)")
    parser.add_argument("--proxy-port", type=int, default=0, help="CONNECT proxy port (default: a free one)")
    parser.add_argument("--username", default=defaults.username)
    parser.add_argument("--password", default=defaults.password)
    parser.add_argument("--security-token", default=defaults.security_token)
    parser.add_argument("--page-size", type=int, default=defaults.query_page_size, help="REST query page size")
    parser.add_argument("--bulk-max-records", type=int, help="cap on rows per Bulk 2.0 results page")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM
    (`python -m cs_pipeline_testing.salesforce_server.local_server`)."""
    args = _arguments(argv)
    config = ApiConfig(
        username=args.username,
        password=args.password,
        security_token=args.security_token,
        query_page_size=args.page_size,
        bulk_max_records=args.bulk_max_records,
    )
    server = LocalSalesforceServer(config=config, host=args.host, port=args.port, proxy_port=args.proxy_port)
    try:
        loaded = server.store.load_csv_exports(args.crm_dir) if args.crm_dir else {}
    except (OSError, ValueError) as exc:  # a missing directory or a cell that does not fit its field
        print(f"cannot load the CRM exports: {exc}", file=sys.stderr)
        return 2
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Ctrl-C and `kill` stop the server, even when SIGINT came ignored from the parent (a
    # background job of a script): Python would then never raise KeyboardInterrupt.
    for stop_signal in stop_signals:
        signal.signal(stop_signal, signal.default_int_handler)
    # The kernel hands a signal to any thread that does not block it, and one taken by a
    # connection's thread (a keep-alive client's) leaves the main thread's wait asleep. The
    # server's threads inherit the mask they are started with: they block both signals, and
    # the main thread alone takes them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        with server:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
            counts = ", ".join(f"{name}: {count}" for name, count in loaded.items()) or "no records"
            print(f"Local Salesforce org at {server.instance_url} ({counts})")
            print(f"  proxy (https CONNECT): {server.proxy_url}")
            print(f"  CA certificate:        {server.ca_path}")
            print(f"  username:              {server.username}")
            print(f"  password:              {server.password}")
            print(f"  security token:        {server.security_token}")
            print(f"  session id:            {server.new_session_id()}")
            print("Throwaway test credentials. Ctrl-C stops the server.", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass  # leaving the with block stopped the server and removed its CA directory
    return 0


if __name__ == "__main__":
    sys.exit(main())
