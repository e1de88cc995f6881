"""A plain-HTTP CONNECT proxy that tunnels every target to one address.

simple-salesforce logs in at `https://login.salesforce.com/services/Soap/u/{version}`, a URL
it builds itself. A client whose `requests.Session` uses this proxy for https reaches the
local server under that name instead: the proxy answers `CONNECT login.salesforce.com:443`
by opening a tunnel to the local HTTPS server, whose certificate covers `*.salesforce.com`.
Other methods get 405. A reset on one side of a tunnel is passed on as a reset.
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import struct
import sys
import threading

_IDLE_TUNNEL_SECONDS = 120.0
# How often serve_forever checks for shutdown; the 0.5 s default would make each stop() that slow.
SHUTDOWN_POLL_SECONDS = 0.02
_HEADER_LIMIT = 65536


class OpenSockets:
    """The connections a server has open, so that stopping it ends every one, whatever its
    client does: idle keep-alive connections, tunnels, a client silent in the middle of a TLS
    handshake or of a request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False

    def add(self, sock: socket.socket) -> bool:
        """Keep `sock` until `discard`; False (and `sock` closed) once the server is stopping."""
        with self._lock:
            if not self._closed:
                self._sockets.add(sock)
                return True
        _close(sock)
        return False

    def discard(self, sock: socket.socket) -> None:
        """Stop tracking `sock` (its tunnel ended)."""
        with self._lock:
            self._sockets.discard(sock)

    def close_all(self) -> None:
        """Close every tracked socket and refuse new ones."""
        with self._lock:
            sockets, self._sockets, self._closed = self._sockets, set(), True
        for sock in sockets:
            _close(sock)


def _close(sock: socket.socket) -> None:
    """Shut down, then close: the shutdown wakes a thread blocked reading or writing it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its peer
    sock.close()


def no_delay(sock: socket.socket) -> None:
    """Send small writes at once: with Nagle's algorithm, a response written as headers then
    body meets the peer's delayed ACK and every request takes ~40 ms more."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def ack_at_once(sock: socket.socket) -> None:
    """Acknowledge what was just read without the usual delay. A client writing a POST as
    headers then body, with Nagle's algorithm on (urllib3 through a tunnel), holds the body
    until the headers are acknowledged: a ~40 ms stall per request otherwise. Quick-ack
    mode lapses on its own, hence after every read."""
    if _QUICKACK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # already closed
    sock.close()


class QuietConnectionErrors:
    """A socketserver mixin: a connection that fails (reset by its client, or closed by
    stopping the server mid-request) is no error of the server's; no traceback for it."""

    def handle_error(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        """Ignore the socket errors of a client that went away; report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[misc]


class _TunnelServer(QuietConnectionErrors, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], target: tuple[str, int]) -> None:
        super().__init__(address, _TunnelHandler)
        self.target = target
        self.open_sockets = OpenSockets()
        self.tunnels: list[str] = []
        self.tunnels_lock = threading.Lock()

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        if not self.open_sockets.add(request):  # from the first byte on: a client silent before CONNECT too
            return
        try:
            super().finish_request(request, client_address)
        finally:
            self.open_sockets.discard(request)


class _TunnelHandler(socketserver.StreamRequestHandler):
    # Unbuffered reads: nothing past the CONNECT headers may be swallowed by a buffer.
    rbufsize = 0
    server: _TunnelServer

    def handle(self) -> None:
        request_line = self.rfile.readline(_HEADER_LIMIT).decode("latin-1")
        while self.rfile.readline(_HEADER_LIMIT) not in (b"\r\n", b"\n", b""):
            pass  # CONNECT headers (Host, Proxy-Connection) carry nothing the tunnel needs
        method, _, rest = request_line.partition(" ")
        if method.upper() != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with self.server.tunnels_lock:
            self.server.tunnels.append(rest.split(" ")[0])
        try:
            upstream = socket.create_connection(self.server.target, timeout=10)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        no_delay(self.connection)
        no_delay(upstream)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if not self.server.open_sockets.add(upstream):
            return
        try:
            _pump(self.connection, upstream)
        finally:
            self.server.open_sockets.discard(upstream)
            upstream.close()


def _pump(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until a side closes; a reset on one side resets the other."""
    client.settimeout(None)
    upstream.settimeout(None)
    with selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        while True:
            ready = selector.select(timeout=_IDLE_TUNNEL_SECONDS)
            if not ready:
                return
            for key, _ in ready:
                source, sink = key.fileobj, key.data
                assert isinstance(source, socket.socket)
                try:
                    data = source.recv(65536)
                    ack_at_once(source)
                except ConnectionResetError:
                    reset(sink)
                    return
                except OSError:
                    return
                if not data:
                    return
                try:
                    sink.sendall(data)
                except OSError:
                    return


class ConnectProxy:
    """An HTTP CONNECT proxy tunnelling to `target`, as a corporate proxy would."""
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _TunnelServer((host, port), target)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The proxy's URL (http://host:port)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def tunnels(self) -> list[str]:
        """Every CONNECT target asked for, e.g. "login.salesforce.com:443"."""
        with self._server.tunnels_lock:
            return list(self._server.tunnels)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name="salesforce-proxy", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close every tunnel."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._server.open_sockets.close_all()
