"""A stand-in for SQS's message-move task, which moto lacks, speaking SQS's own JSON protocol.

moto answers ``StartMessageMoveTask`` with HTTP 500, so the code that starts
and watches AWS's task cannot meet a moto server. This small HTTP server
answers the three calls that code makes (``GetQueueAttributes`` for the
ARNs, ``StartMessageMoveTask``, ``ListMessageMoveTasks``) as AWS documents
them: JSON 1.0 bodies, the action in ``X-Amz-Target``, a task handle only
while the task runs. It moves nothing: it plays back the task states a test
gives it and records what it was asked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT = "123456789012"
REGION = "ap-northeast-1"


@dataclass
class MoveTaskEndpoint:
    """What the stand-in answers and what it was asked."""

    #: ListMessageMoveTasks results played back one per call (the last one repeats).
    states: list[dict[str, Any]]
    handle: str = "task-handle-1"
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def queue_url(self, name: str) -> str:
        return f"{self.url}/{ACCOUNT}/{name}"

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append((action, body))
        if action == "GetQueueAttributes":
            name = str(body["QueueUrl"]).rsplit("/", 1)[-1]
            return 200, {"Attributes": {"QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}}
        if action == "StartMessageMoveTask":
            return 200, {"TaskHandle": self.handle}
        if action == "ListMessageMoveTasks":
            calls = sum(1 for name, _ in self.requests if name == action)
            state = self.states[min(calls, len(self.states)) - 1]
            return 200, {"Results": [state]}
        return 400, {"__type": "com.amazonaws.sqs#InvalidAction", "message": action}


@contextmanager
def move_task_endpoint(states: list[dict[str, Any]]) -> Iterator[MoveTaskEndpoint]:
    endpoint = MoveTaskEndpoint(states=states)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            action = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
            status, answer = endpoint.answer(action, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
