"""A small fault-injecting proxy: TCP on 127.0.0.1 (for moto) or a unix socket (for Docker).

The runner is pointed at the proxy (``endpoint_url`` or ``DOCKER_HOST``) and the
test breaks the path to the real service on demand, without restarting the
service (a restarted moto server forgets every queue and table):

- ``cut()`` drops every open connection and refuses new ones (the listening
  socket is closed: ``ECONNREFUSED`` on TCP, no socket file for unix), as when
  the network or the daemon goes away; ``restore()`` listens again on the same
  address.
- ``fail_http(status, body)`` answers every request with that HTTP response
  (throttling, a 5xx) instead of forwarding it.
- ``swallow_responses()`` forwards requests but drops the connection as soon
  as the answer starts to come back: the request took effect, the client
  never learns it (the case that makes a retried write meet its own flag).

Byte forwarding propagates half-closes in both directions, which Docker's
attach stream relies on (the container's stdin ends when the client shuts
its side for writing). Everything runs in daemon threads; ``close()`` stops
them all.
"""

from __future__ import annotations

import contextlib
import enum
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

#: Bytes per ``recv`` while forwarding.
CHUNK = 64 * 1024
#: How often the accept loop looks at its stop flag (seconds).
ACCEPT_POLL = 0.05


class Mode(enum.Enum):
    FORWARD = "forward"
    HTTP_ERROR = "http-error"
    SWALLOW = "swallow"


@dataclass(frozen=True)
class Canned:
    """The HTTP answer of ``Mode.HTTP_ERROR``."""

    status: int
    body: bytes
    content_type: str


_REASONS = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}


class FaultProxy:
    """Forwards connections to ``upstream``; see the module docstring.

    Build with ``FaultProxy.tcp(upstream_port)`` or
    ``FaultProxy.unix(upstream_path, listen_path)``, then ``start()``.
    """

    def __init__(self, family: int, listen: str | tuple[str, int], upstream: str | tuple[str, int]):
        self._family = family
        self._listen_address = listen
        self._upstream = upstream
        self._lock = threading.Lock()
        self._mode = Mode.FORWARD
        self._canned: Canned | None = None
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stop_accepting = threading.Event()
        self._closed = False
        #: Connections accepted, and connections that took the fault path.
        self.accepted = 0
        self.faulted = 0

    @classmethod
    def tcp(cls, upstream_port: int, upstream_host: str = "127.0.0.1") -> FaultProxy:
        """A proxy on a free 127.0.0.1 port in front of ``upstream_host:upstream_port``."""
        return cls(socket.AF_INET, ("127.0.0.1", 0), (upstream_host, upstream_port))

    @classmethod
    def unix(cls, upstream_path: str, listen_path: str) -> FaultProxy:
        """A proxy listening on the unix socket ``listen_path`` in front of ``upstream_path``."""
        return cls(socket.AF_UNIX, listen_path, upstream_path)

    # -- addresses ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the proxy listens on (fixed at the first ``start``)."""
        assert isinstance(self._listen_address, tuple)
        return self._listen_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` for a TCP proxy, ``unix://<path>`` for a unix one."""
        if isinstance(self._listen_address, tuple):
            return f"http://127.0.0.1:{self.port}"
        return f"unix://{self._listen_address}"

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen (again, on the same address) and accept connections."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(self._family, socket.SOCK_STREAM)
            if self._family == socket.AF_INET:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(str(self._listen_address))
            listener.bind(self._listen_address)
            listener.listen(64)
            listener.settimeout(ACCEPT_POLL)
            if isinstance(self._listen_address, tuple):
                self._listen_address = listener.getsockname()[:2]
            self._listener = listener
            self._stop_accepting = threading.Event()
            self._accepting = threading.Thread(
                target=self._accept_loop,
                args=(listener, self._stop_accepting),
                name="proxy-accept",
                daemon=True,
            )
            self._accepting.start()
        return self

    def close(self) -> None:
        """Stop for good: no listener, no connection, no thread left running."""
        self._closed = True
        self.cut()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- faults --------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until ``restore()``."""
        with self._lock:
            listener, self._listener = self._listener, None
            accepting, self._accepting = self._accepting, None
            self._stop_accepting.set()
        if accepting is not None:
            accepting.join(5)
        if listener is not None:
            listener.close()
            if self._family == socket.AF_UNIX:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(str(self._listen_address))
        self.drop_connections()

    def restore(self) -> None:
        """Forward again, listening on the same address as before."""
        self._set_mode(Mode.FORWARD, None)

    def fail_http(
        self, status: int, body: str, content_type: str = "application/x-amz-json-1.0"
    ) -> None:
        """Accept connections but answer every request with ``status`` and ``body``."""
        self._set_mode(Mode.HTTP_ERROR, Canned(status, body.encode("utf-8"), content_type))

    def swallow_responses(self) -> None:
        """Forward requests but drop each connection when its answer arrives."""
        self._set_mode(Mode.SWALLOW, None)

    def drop_connections(self) -> None:
        """Close every open connection at once (the listener stays as it is)."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _shut(sock)

    def _set_mode(self, mode: Mode, canned: Canned | None) -> None:
        with self._lock:
            self._mode, self._canned = mode, canned
        # Keep-alive connections were opened under the old mode: make clients reconnect.
        self.drop_connections()
        if not self._closed:
            self.start()  # listening again after a cut()

    # -- connections ----------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            client.settimeout(None)
            with self._lock:
                self.accepted += 1
                mode, canned = self._mode, self._canned
                self._sockets.add(client)
            handler = self._answer_canned if mode is Mode.HTTP_ERROR else self._forward
            threading.Thread(
                target=handler, args=(client, mode, canned), name="proxy-conn", daemon=True
            ).start()

    def _forward(self, client: socket.socket, mode: Mode, _canned: Canned | None) -> None:
        try:
            upstream = socket.socket(self._family, socket.SOCK_STREAM)
            upstream.connect(self._upstream)
        except OSError:
            self._forget(client)
            return
        with self._lock:
            if client not in self._sockets:  # dropped meanwhile
                upstream.close()
                return
            self._sockets.add(upstream)
        swallow = mode is Mode.SWALLOW
        back = threading.Thread(
            target=self._pump, args=(upstream, client, swallow), name="proxy-back", daemon=True
        )
        back.start()
        self._pump(client, upstream, False)
        back.join()
        self._forget(client, upstream)

    def _pump(self, source: socket.socket, target: socket.socket, swallow: bool) -> None:
        """Copy until EOF, then half-close ``target``; with ``swallow``, cut at the first byte."""
        try:
            while data := source.recv(CHUNK):
                if swallow:
                    with self._lock:
                        self.faulted += 1
                    _shut(source)
                    _shut(target)
                    return
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            _shut(source)
            _shut(target)

    def _answer_canned(self, client: socket.socket, _mode: Mode, canned: Canned | None) -> None:
        assert canned is not None
        try:
            for _request in _http_requests(client):
                with self._lock:
                    self.faulted += 1
                head = (
                    f"HTTP/1.1 {canned.status} {_REASONS.get(canned.status, 'Error')}\r\n"
                    f"Content-Type: {canned.content_type}\r\n"
                    f"Content-Length: {len(canned.body)}\r\n"
                    "Connection: keep-alive\r\n\r\n"
                )
                client.sendall(head.encode("ascii") + canned.body)
        except OSError:
            pass
        finally:
            self._forget(client)

    def _forget(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._sockets.discard(sock)
        for sock in sockets:
            _shut(sock)


def _http_requests(sock: socket.socket) -> Iterator[bytes]:
    """Each HTTP/1.1 request (head and Content-Length body) read from ``sock`` until EOF."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(CHUNK)
            if not data:
                return
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(buffer) < length:
            data = sock.recv(CHUNK)
            if not data:
                return
            buffer += data
        yield head + b"\r\n\r\n" + buffer[:length]
        buffer = buffer[length:]


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
