"""The Docker implementation of the executor seam.

One run is: make sure the image is present (pull it once if not), create a
container with stdin open, attach to its standard streams BEFORE starting it
(so that no early output is lost), start it, write the stdin lines and
half-close, then wait for the exit, the timeout or a cancel. Three helper
threads per run keep the main thread free to poll the cancel flag and the
deadline: one reads the multiplexed output, one writes stdin (a container that
never reads its stdin must not block us), one waits for the exit.

The container is removed in a ``finally`` whatever happened; containers that
a crashed runner left behind are found by their labels (``runner_labels``)
and removed by ``remove_orphans`` at the next start.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import docker
import docker.errors
import requests
from docker.constants import DEFAULT_MAX_POOL_SIZE
from docker.types import LogConfig

from ..errors import AdminError, FatalError, RunnerError
from .base import (
    Cancelled,
    ContainerRejected,
    DockerUnavailable,
    Execution,
    ImageNotAvailable,
    RunSpec,
)

log = logging.getLogger(__name__)

#: Label on every container a runner creates; ``remove_orphans`` filters on it.
LABEL_RUNNER = "opthub-runner"
#: Host name of the runner that created the container (pids only mean something there).
LABEL_HOST = "opthub-runner.host"
#: Pid of the runner process that created the container (dead pid = orphan).
LABEL_PID = "opthub-runner.pid"
#: Free-form id of the runner instance, for the administrator's ``docker ps --filter``.
LABEL_INSTANCE = "opthub-runner.instance"
#: "1" on containers created with ``rm: false``: kept on purpose, never reaped.
LABEL_KEEP = "opthub-runner.keep"

#: How often the main thread looks at the cancel flag and the deadline (seconds).
POLL_INTERVAL = 0.2
#: Bytes asked of the attach socket per ``recv``.
RECV_SIZE = 64 * 1024
#: json-file log bound: ``docker logs`` still works for rm=false debugging, disk stays bounded.
LOG_MAX_SIZE = "10m"
#: Extra seconds on the exit-wait HTTP request beyond the job's own timeout and grace.
WAIT_REQUEST_SLACK = 30.0

#: Frame header of Docker's multiplexed attach stream: stream type, 3 zero bytes, size (BE).
_FRAME_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2
#: Secrets shorter than this are not redacted from messages (would mangle the text).
_MIN_REDACTED_LENGTH = 3
#: Reasons quoted from Docker or requests are cut to this many characters (one log line).
_MAX_REASON_LENGTH = 300

_CONNECT_MESSAGE = (
    "Unable to communicate with Docker. Please ensure Docker is running and accessible."
)
_PERMISSION_HINT = (
    " If the socket's permission is denied, add the user to the docker group"
    " (sudo usermod -aG docker $USER) and log in again."
)


def connect_docker(
    base_url: str | None = None, *, max_pool_size: int = DEFAULT_MAX_POOL_SIZE
) -> docker.DockerClient:
    """A client for the local Docker daemon (or ``base_url``), checked with a ping.

    Raises a ``FatalError`` with the one line the published README documents,
    because without Docker the runner can do nothing useful.
    """
    try:
        pool = {"max_pool_size": max_pool_size}  # concurrent jobs each hold connections
        client = (
            docker.from_env(**pool)
            if base_url is None
            else docker.DockerClient(base_url=base_url, **pool)
        )
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = " ".join(str(exc).split())
        hint = _PERMISSION_HINT if "permission denied" in reason.lower() else ""
        raise FatalError(f"{_CONNECT_MESSAGE} ({reason}){hint}") from exc
    return client


def runner_labels(instance_id: str) -> dict[str, str]:
    """Labels that tie a container to this runner process, for crash recovery."""
    return {
        LABEL_RUNNER: "1",
        LABEL_HOST: socket.gethostname(),
        LABEL_PID: str(os.getpid()),
        LABEL_INSTANCE: instance_id,
    }


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 probes without killing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it just belongs to another user
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A dead runner its parent has not reaped yet still answers signal 0."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS) or gone meanwhile: trust signal 0
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z"


def remove_orphans(
    client: docker.DockerClient, *, alive: Callable[[int], bool] = pid_alive
) -> list[str]:
    """Remove containers that a runner on THIS host left behind when it died.

    Only containers labelled by a runner on this host are considered, only
    those meant to be removed (not kept by ``rm: false``), and only when
    their runner's pid is no longer alive: a live runner's containers and
    other hosts' containers (sharing a remote daemon) are never touched. A pid
    reused by an unrelated process makes us keep the container until that
    process ends, which errs on the safe side. Returns the removed ids.
    """
    host_filter = {"label": [f"{LABEL_RUNNER}=1", f"{LABEL_HOST}={socket.gethostname()}"]}
    removed: list[str] = []
    for info in client.api.containers(all=True, filters=host_filter):
        container_id = str(info["Id"])
        labels = info.get("Labels") or {}
        pid = _parse_pid(labels.get(LABEL_PID))
        if pid is None or pid == os.getpid() or alive(pid) or labels.get(LABEL_KEEP) == "1":
            continue  # a kept container (rm: false) stays for ``docker logs``
        try:
            client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            continue  # gone meanwhile
        log.warning("removed container %s left behind by dead runner pid %s", container_id, pid)
        removed.append(container_id)
    return removed


def _parse_pid(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class DockerExecutor:
    """Runs one ``RunSpec`` in a fresh container; see the module docstring.

    ``output_limit`` bounds the bytes kept per stream (the LAST bytes are
    kept, since the result is the last line); ``stop_timeout`` is how long to
    wait for a killed container to exit and for its output to drain before
    giving up on them (the container is force-removed anyway).
    """

    def __init__(
        self,
        *,
        client: docker.DockerClient,
        rm: bool = True,
        output_limit: int = 4 * 1024 * 1024,
        labels: Mapping[str, str] = MappingProxyType({}),
        stop_timeout: float = 10.0,
    ) -> None:
        if output_limit <= 0:
            raise ValueError("output_limit must be positive")
        self._api: Any = client.api
        self._rm = rm
        self._output_limit = output_limit
        self._labels = {**labels, LABEL_KEEP: "0" if rm else "1"}
        self._stop_timeout = stop_timeout
        self._present: set[str] = set()
        self._present_lock = threading.Lock()
        self._pull_locks: dict[str, threading.Lock] = {}
        # Containers whose removal failed because the daemon was away. They carry
        # this live runner's pid, so remove_orphans would never take them: the
        # next run removes them once the daemon answers again.
        self._leftovers: set[str] = set()
        self._leftovers_lock = threading.Lock()

    def run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        """Run ``spec``; Docker's own errors leave here as the seam's errors."""
        if cancel.is_set():
            raise Cancelled(f"run of {spec.image} cancelled before it started")
        try:
            self._remove_leftovers()
            self._ensure_image(spec.image)
            return self._run(spec, cancel)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            translated = _translate(exc, spec)
            if translated is None:
                raise
            # Docker quotes invalid variables in its errors: drop such an
            # original from the chain so that no logged traceback shows a secret.
            raise translated from (None if _mentions_secret(exc, spec) else exc)

    # -- images ------------------------------------------------------------

    def _ensure_image(self, image: str) -> None:
        """Inspect, and pull if absent, once per image for the executor's life.

        A per-image lock makes concurrent jobs of one image wait for a single
        pull instead of each pulling. Failures are not remembered: the
        operator may fix them (``docker login``) while the runner runs.
        """
        with self._present_lock:
            if image in self._present:
                return
            pull_lock = self._pull_locks.setdefault(image, threading.Lock())
        with pull_lock:
            with self._present_lock:
                if image in self._present:
                    return
            self._inspect_or_pull(image)
            with self._present_lock:
                self._present.add(image)

    def _forget_image(self, image: str) -> None:
        with self._present_lock:
            self._present.discard(image)

    def _inspect_or_pull(self, image: str) -> None:
        try:
            self._api.inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.is_server_error():
                raise
            raise _not_available(image, _explanation(exc)) from exc
        log.info("image %s is not present: pulling it", image)
        try:
            for event in self._api.pull(image, stream=True, decode=True):
                if isinstance(event, dict) and "error" in event:
                    raise _not_available(image, str(event["error"]))
        except docker.errors.APIError as exc:
            raise _not_available(image, _explanation(exc)) from exc
        try:
            self._api.inspect_image(image)
        except docker.errors.ImageNotFound as exc:
            raise _not_available(image, "the pull did not produce it") from exc
        log.info("pulled image %s", image)

    # -- one run -----------------------------------------------------------

    def _run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        name = f"opthub-{uuid.uuid4().hex[:12]}"
        try:
            self._create(spec, name)
            with _attached(self._api, name) as sock:
                return self._supervise(spec, cancel, name, sock)
        finally:
            if self._rm:
                self._remove(name)

    def _create(self, spec: RunSpec, name: str) -> None:
        """Create the container; recover once if a remembered image was deleted meanwhile."""
        try:
            self._create_container(spec, name)
        except docker.errors.ImageNotFound:
            self._forget_image(spec.image)
            self._ensure_image(spec.image)
            self._create_container(spec, name)

    def _create_container(self, spec: RunSpec, name: str) -> None:
        host_config = self._api.create_host_config(
            log_config=LogConfig(
                type=LogConfig.types.JSON, config={"max-size": LOG_MAX_SIZE, "max-file": "1"}
            ),
        )
        # detach=False with stdin_open=True is what makes docker-py set
        # StdinOnce (and the Attach* flags): the daemon then closes the
        # container's stdin when our attach connection half-closes.
        # use_config_proxy=False: the environment is exactly the match's.
        self._api.create_container(
            spec.image,
            command=list(spec.command) if spec.command is not None else None,
            name=name,
            detach=False,
            stdin_open=True,
            tty=False,
            environment=dict(spec.environment),
            labels=self._labels,
            host_config=host_config,
            use_config_proxy=False,
        )

    def _supervise(
        self, spec: RunSpec, cancel: threading.Event, name: str, sock: socket.socket
    ) -> Execution:
        reader = _OutputReader(sock, self._output_limit)
        reader.start()
        started_at = _now()
        self._api.start(name)
        deadline = time.monotonic() + spec.timeout
        if spec.deadline is not None:
            deadline = min(deadline, spec.deadline)
        _StdinWriter(sock, spec.stdin_lines).start()
        waiter = _ExitWaiter(self._api, name, spec.timeout + self._stop_timeout)
        waiter.start()
        timed_out = self._await_exit(spec, cancel, name, waiter, deadline)
        finished_at = _now()
        if timed_out:
            waiter.done.wait(self._stop_timeout)
            exit_code = None
        else:
            exit_code = waiter.result()
        reader.finish(sock, self._stop_timeout)
        stdout, stderr = reader.stdout.snapshot(), reader.stderr.snapshot()
        log.debug("container %s of %s ended: exit %s", name, spec.image, exit_code)
        return Execution(
            exit_code=exit_code,
            stdout=stdout[0],
            stderr=stderr[0],
            timed_out=timed_out,
            started_at=started_at,
            finished_at=finished_at,
            stdout_truncated=stdout[1],
            stderr_truncated=stderr[1],
        )

    def _await_exit(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        name: str,
        waiter: _ExitWaiter,
        deadline: float,
    ) -> bool:
        """Block until exit (False), the deadline (True, container killed) or a cancel."""
        while not waiter.done.wait(POLL_INTERVAL):
            if cancel.is_set():
                log.info("cancelling container %s of %s", name, spec.image)
                self._kill(name)
                raise Cancelled(f"run of {spec.image} cancelled")
            if time.monotonic() >= deadline:
                log.warning(
                    "container %s of %s timed out after %ss: killing it",
                    name,
                    spec.image,
                    spec.timeout,
                )
                self._kill(name)
                return True
        return False

    def _kill(self, name: str) -> None:
        """SIGKILL, not SIGTERM: an image that ignores SIGTERM must still end."""
        try:
            self._api.kill(name, signal="SIGKILL")
        except docker.errors.APIError as exc:
            if exc.is_server_error():
                raise
            log.debug("kill %s: %s", name, _explanation(exc))  # already exited or gone

    def _remove(self, name: str) -> None:
        """Force-remove, logging (never raising) so that the original outcome survives."""
        try:
            self._api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass  # never created, or already removed
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                log.error("could not remove container %s: %s", name, _explanation(exc))
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            log.error(
                "could not remove container %s (it will be removed when Docker answers again): %s",
                name,
                exc,
            )
            with self._leftovers_lock:
                self._leftovers.add(name)

    def _remove_leftovers(self) -> None:
        """Remove the containers that ``_remove`` could not; keep those it still cannot."""
        with self._leftovers_lock:
            names = sorted(self._leftovers)
        for name in names:
            try:
                self._api.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass  # the daemon lost it (a restart without live-restore)
            except (requests.exceptions.RequestException, docker.errors.DockerException):
                continue  # still away or busy: next time
            log.info("removed container %s, abandoned while Docker was unreachable", name)
            with self._leftovers_lock:
                self._leftovers.discard(name)


# -- streams ---------------------------------------------------------------


@contextmanager
def _attached(api: Any, name: str) -> Iterator[socket.socket]:
    """The container's stdin/stdout/stderr as one raw socket, shut and closed on exit."""
    response_socket = api.attach_socket(
        name, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
    )
    try:
        sock = _raw_socket(response_socket)
    except AdminError:
        response_socket.close()
        raise
    try:
        sock.settimeout(None)  # a silent job may run for hours
        yield sock
    finally:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # unblocks our reader and writer threads
        sock.close()
        with suppress(OSError):
            response_socket.close()


def _raw_socket(response_socket: object) -> socket.socket:
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


class _Tail:
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


class _OutputReader(threading.Thread):
    """Demultiplexes the attach stream (8-byte frame headers) into two tails."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        super().__init__(name="docker-output", daemon=True)
        self._sock = sock
        self.stdout = _Tail(limit)
        self.stderr = _Tail(limit)
        self._header = bytearray()
        self._remaining = 0
        self._target: _Tail | None = None

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


class _StdinWriter(threading.Thread):
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


class _ExitWaiter(threading.Thread):
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


# -- messages --------------------------------------------------------------


def _translate(exc: BaseException, spec: RunSpec) -> RunnerError | None:
    """The seam's error for a docker-py or requests error, or None to let it through."""
    reason = _short(exc, spec)
    if isinstance(exc, docker.errors.APIError):
        # The runtime refusing the image's process (some daemons answer 500 for
        # a missing entrypoint) will not heal by retrying: it is the image's fault.
        if exc.is_server_error() and "OCI runtime" not in str(exc):
            return DockerUnavailable(f"Docker daemon error: {reason}")
        return ContainerRejected(f"Docker refused to run image {spec.image!r}: {reason}")
    if isinstance(exc, requests.exceptions.RequestException) or "connect" in str(exc).lower():
        return DockerUnavailable(f"Docker daemon unreachable: {reason}")
    return None


def _secrets(spec: RunSpec) -> list[str]:
    """Environment values long enough to redact (shorter ones would mangle any text)."""
    return [value for value in spec.environment.values() if len(value) >= _MIN_REDACTED_LENGTH]


def _mentions_secret(exc: BaseException, spec: RunSpec) -> bool:
    text = str(exc)
    return any(secret in text for secret in _secrets(spec))


def _not_available(image: str, reason: str) -> ImageNotAvailable:
    return ImageNotAvailable(
        f"Docker image {image!r} is not available ({reason}). Check the image name and that"
        " the runner's Docker can pull it (docker login with an account that can read it)."
    )


def _explanation(exc: docker.errors.APIError) -> str:
    return " ".join(str(exc.explanation or exc).split())


def _short(exc: BaseException, spec: RunSpec) -> str:
    """A one-line reason with the environment's values blanked out (they may be secrets)."""
    text = str(exc)
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        text = str(exc.explanation)  # without the URL and status docker-py prepends
    for secret in _secrets(spec):
        text = text.replace(secret, "***")
    return " ".join(text.split())[:_MAX_REASON_LENGTH]  # redact first: a cut could split a secret


def _now() -> datetime:
    return datetime.now(timezone.utc)
