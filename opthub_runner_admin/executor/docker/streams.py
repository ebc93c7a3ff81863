"""The attach stream of one container, served by three small threads.

Docker multiplexes stdout and stderr on one hijacked socket (8-byte frame
headers) that also carries stdin. The threads keep the executor's own thread
free to poll the cancel flag and the deadline: ``OutputReader`` demultiplexes
into two bounded tails, ``StdinWriter`` writes the lines then half-closes (a
container that never reads its stdin must not block us), and ``ExitWaiter``
blocks on Docker's wait endpoint.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from ...errors import AdminError

log = logging.getLogger(__name__)

#: Bytes asked of the attach socket per ``recv``.
RECV_SIZE = 64 * 1024
#: Extra seconds on the exit-wait HTTP request beyond the job's own timeout and grace.
WAIT_REQUEST_SLACK = 30.0

#: Frame header of Docker's multiplexed attach stream: stream type, 3 zero bytes, size (BE).
_FRAME_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2


class Attachment:
    """The container's stdin/stdout/stderr as one raw socket, with the reader already running.

    Opened BEFORE the container starts, so that no early output is lost; it
    may outlive the call that opened it (a container started ahead of its job).
    """

    def __init__(self, *, response_socket: Any, sock: socket.socket, output_limit: int) -> None:
        self._response_socket = response_socket
        self.sock = sock
        self.reader = OutputReader(sock, output_limit)

    @classmethod
    def open(cls, api: Any, name: str, output_limit: int) -> Attachment:
        response_socket = api.attach_socket(
            name, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        try:
            sock = raw_socket(response_socket)
        except AdminError:
            close_response(response_socket)
            raise
        sock.settimeout(None)  # a silent job may run for hours
        attachment = cls(response_socket=response_socket, sock=sock, output_limit=output_limit)
        attachment.reader.start()
        return attachment

    def close(self) -> None:
        """Shut and close the socket; unblocks the reader and writer threads."""
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        close_response(self._response_socket)
        self.sock.close()


def close_response(response_socket: Any) -> None:
    """Close the hijacked HTTP response from the top down, as the standard library expects.

    docker-py hands us the ``SocketIO`` at the bottom of a stack: requests'
    response, urllib3's, http.client's, a buffered reader, then that
    ``SocketIO``. Closing the bottom first leaves the layers above to the
    garbage collector, and on Python 3.13 ``HTTPResponse.close`` then flushes a
    closed file and prints "Exception ignored ... I/O operation on closed file"
    once per container. Closing the response first closes every layer in
    order; the ``SocketIO`` close after it is then a no-op.
    """
    response = getattr(response_socket, "_response", None)
    if response is not None:
        with suppress(OSError, ValueError):
            response.close()
    with suppress(OSError):
        response_socket.close()


def raw_socket(response_socket: object) -> socket.socket:
    """The socket under docker-py's hijacked response.

    docker-py returns a ``socket.SocketIO`` for the unix socket: its own
    ``close`` does not half-close, so we need the ``socket.socket`` under it
    (``_sock``) for ``recv`` and ``shutdown(SHUT_WR)``. TLS and ssh transports
    cannot half-close the way Docker needs to see stdin's EOF.
    """
    sock = response_socket if isinstance(response_socket, socket.socket) else None
    if sock is None:
        sock = getattr(response_socket, "_sock", None)
    if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        raise AdminError(
            "the Docker executor needs a unix socket or plain tcp Docker host"
            f" (got {type(response_socket).__name__})"
        )
    return sock


class Tail:
    """The last ``limit`` bytes of a stream, in at most ``2 * limit`` bytes of memory."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._total = 0
        self._lock = threading.Lock()

    def append(self, data: bytes | memoryview) -> None:
        with self._lock:
            self._total += len(data)
            if len(data) >= self._limit:
                self._buffer = bytearray(data[-self._limit :])
                return
            self._buffer += data
            if len(self._buffer) > 2 * self._limit:
                del self._buffer[: -self._limit]

    def snapshot(self) -> tuple[str, bool]:
        """The kept text (UTF-8, invalid bytes replaced) and whether the start was cut."""
        with self._lock:
            kept = bytes(self._buffer[-self._limit :])
            return kept.decode("utf-8", errors="replace"), self._total > self._limit


class OutputReader(threading.Thread):
    """Demultiplexes the attach stream (8-byte frame headers) into two tails."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        super().__init__(name="docker-output", daemon=True)
        self._sock = sock
        self.stdout = Tail(limit)
        self.stderr = Tail(limit)
        self._header = bytearray()
        self._remaining = 0
        self._target: Tail | None = None

    def run(self) -> None:
        try:
            while chunk := self._sock.recv(RECV_SIZE):
                self._feed(memoryview(chunk))
        except OSError as exc:
            log.debug("output stream closed: %s", exc)  # we shut the socket down

    def _feed(self, chunk: memoryview) -> None:
        pos = 0
        while pos < len(chunk):
            if self._remaining == 0:
                needed = _FRAME_HEADER.size - len(self._header)
                self._header += chunk[pos : pos + needed]
                pos += needed
                if len(self._header) == _FRAME_HEADER.size:
                    self._start_frame()
                continue
            part = chunk[pos : pos + self._remaining]
            if self._target is not None:
                self._target.append(part)
            self._remaining -= len(part)
            pos += len(part)

    def _start_frame(self) -> None:
        kind, size = _FRAME_HEADER.unpack(self._header)
        self._header.clear()
        self._remaining = size
        self._target = {_STDOUT: self.stdout, _STDERR: self.stderr}.get(kind)

    def finish(self, sock: socket.socket, grace: float) -> None:
        """Let the stream drain after the exit, then cut it if it does not end."""
        self.join(grace)
        if self.is_alive():
            log.warning("container output did not end %ss after the exit: cutting it", grace)
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self.join(1.0)


class StdinWriter(threading.Thread):
    """Writes the lines then half-closes, so the process sees EOF.

    A thread because ``sendall`` blocks while the container does not read its
    stdin; the kill or our final shutdown of the socket unblocks it. (The
    attach stream treats ctrl-p ctrl-q as a detach sequence; JSON lines never
    contain those raw control bytes.)
    """

    def __init__(self, sock: socket.socket, lines: Sequence[str]) -> None:
        super().__init__(name="docker-stdin", daemon=True)
        self._sock = sock
        self._payload = b"".join(line.encode("utf-8") + b"\n" for line in lines)

    def run(self) -> None:
        try:
            self._sock.sendall(self._payload)
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            log.debug("stdin not fully delivered (container ended first): %s", exc)


class ExitWaiter(threading.Thread):
    """Blocks on Docker's wait endpoint so the main thread can poll cancel and deadline."""

    def __init__(self, api: Any, name: str, request_timeout: float) -> None:
        super().__init__(name="docker-wait", daemon=True)
        self._api = api
        self._name = name
        self._request_timeout = request_timeout + WAIT_REQUEST_SLACK
        self.done = threading.Event()
        self._status: int | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            answer = self._api.wait(self._name, timeout=self._request_timeout)
            self._status = int(answer["StatusCode"])
        except Exception as exc:  # handed to the main thread, which maps it
            self._error = exc
        finally:
            self.done.set()

    def result(self) -> int:
        """The exit code, or the error the wait met (raised in the caller's thread)."""
        if self._error is not None:
            raise self._error
        if self._status is None:
            raise RuntimeError("exit status read before the wait ended")
        return self._status
