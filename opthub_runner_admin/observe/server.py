"""One HTTP port for people and machines: ``/`` page, ``/metrics``, ``/healthz``.

A ``ThreadingHTTPServer`` from the standard library in a daemon thread;
bound to 127.0.0.1 unless the operator sets ``metrics_host``, because the
page names participants and the metrics are not for the world.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from ..host.resources import HostResources
from .board import Snapshot, StatusBoard, stalled
from .holds import LOGIN_NEEDED
from .match_usage import MatchUsageBoard, usage_document
from .metrics import RunnerMetrics
from .page import render_page, static_text
from .usage_view import usage_section

log = logging.getLogger(__name__)

#: Where ``opthub-runner status`` reads what each match's trials used (``match_usage``).
USAGE_PATH = "/usage.json"


class MonitorServer:
    """Serves the board and the metrics; ``start`` binds, ``stop`` closes."""

    def __init__(
        self,
        *,
        mode: str,
        board: StatusBoard,
        metrics: RunnerMetrics,
        host: str,
        port: int,
        health: Callable[[Snapshot], str | None],
        usage: MatchUsageBoard | None = None,
        resources: HostResources | None = None,
    ) -> None:
        self._mode = mode
        self._board = board
        self._metrics = metrics
        self._host = host
        self._port = port
        self._health = health
        self._usage = usage
        self._resources = resources or HostResources(memory=None, cores=None)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when 0 was asked for)."""
        if self._server is None:
            raise RuntimeError("the monitor server is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._server = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        route = path.split("?", 1)[0]
        if route == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self._metrics.exposition()
        if route == USAGE_PATH:
            return 200, "application/json", self._usage_json()
        snapshot = self._board.snapshot()
        problem = self._health(snapshot)
        if route == "/healthz":
            if problem:
                return 503, "text/plain; charset=utf-8", f"unhealthy: {problem}\n".encode()
            holds = "".join(f" ({hold.line(snapshot.wall)})" for hold in snapshot.holds.values())
            return 200, "text/plain; charset=utf-8", f"ok{holds}\n".encode()
        if route == "/":
            matches = self._usage.snapshot() if self._usage is not None else []
            page = render_page(
                self._mode, snapshot, problem, usage_section(matches, self._resources)
            )
            return 200, "text/html; charset=utf-8", page.encode()
        if route == "/style.css":
            return 200, "text/css; charset=utf-8", static_text("style.css").encode()
        return 404, "text/plain; charset=utf-8", b"not found\n"

    def _usage_json(self) -> bytes:
        matches = self._usage.snapshot() if self._usage is not None else []
        return usage_document(self._mode, self._resources, matches)


def health_check(*, stall_after: float, job_limit: float) -> Callable[[Snapshot], str | None]:
    def check(snapshot: Snapshot) -> str | None:
        login = snapshot.holds.get(LOGIN_NEEDED)
        if login is not None:
            # Not ready: only the administrator's password brings it back.
            return f"not ready: {login.detail}"
        if snapshot.runner_fault:
            return f"the runner's own machine fails: {snapshot.runner_fault}"
        if snapshot.docker_down:
            return "Docker does not answer: jobs handed back, the runner waits for it"
        if snapshot.holds:
            # Paused on purpose: healthy, and no poll is expected (a watchdog that
            # restarted it would undo the pause).
            return None
        return stalled(snapshot, stall_after=stall_after, job_limit=job_limit)

    return check


def _handler_for(server: MonitorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = server.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("monitor: " + format, *args)

    return Handler
