"""A small real HTTP server playing EC2's instance metadata service (IMDSv2) on 127.0.0.1.

It answers as IMDSv2 does for what the runner reads: ``PUT /latest/api/token``
gives a token, a read without a valid token is refused with 401, the
instance id is served, and ``spot/instance-action`` is 404 until a test
announces an interruption (``announce``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class MetadataServer:
    def __init__(self, *, instance_id: str = "i-0123456789abcdef0") -> None:
        self.instance_id = instance_id
        self.tokens: set[str] = set()
        self.notice: dict[str, str] | None = None
        self.reads: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def announce(self, when: datetime, action: str = "terminate") -> None:
        stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.notice = {"action": action, "time": stamp}


def _handler_for(server: MetadataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            if self.path != "/latest/api/token" or not self.headers.get(
                "X-aws-ec2-metadata-token-ttl-seconds"
            ):
                self._answer(400, "")
                return
            token = uuid.uuid4().hex
            server.tokens.add(token)
            self._answer(200, token)

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") not in server.tokens:
                self._answer(401, "")
                return
            server.reads.append(self.path)
            if self.path == "/latest/meta-data/instance-id":
                self._answer(200, server.instance_id)
            elif self.path == "/latest/meta-data/spot/instance-action" and server.notice:
                self._answer(200, json.dumps(server.notice))
            else:
                self._answer(404, "")

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def metadata_server() -> Iterator[MetadataServer]:
    server = MetadataServer()
    server.start()
    yield server
    server.stop()
