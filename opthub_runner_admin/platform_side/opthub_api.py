"""OptHub's GraphQL API, played for real: a GraphQL-over-HTTP server on 127.0.0.1.

It executes the posted query with graphql-core against a schema holding the
contract's ``getMatch`` fields, so a misspelt field in the runner's query fails
here as it would against AppSync. It records every request (headers, query,
variables) so that its users count calls on the server side, and it can be
told to withhold private values, answer GraphQL errors or an HTTP status,
refuse unknown bearer tokens (401, as AppSync does), or delay its answers.
The tests and the season benchmark share it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import GraphQLResolveInfo, build_schema, graphql_sync

#: The part of OptHub's AppSync schema that getMatch reads.
SCHEMA = build_schema(
    """
    type KeyValue { key: String! value: String }
    type Problem { id: String dockerImage: String }
    type Indicator { id: String dockerImage: String }
    type Match {
      id: String!
      problem: Problem
      indicator: Indicator
      problemPublicEnvironments: [KeyValue]
      indicatorPublicEnvironments: [KeyValue]
      problemPrivateEnvironments: [KeyValue]
      indicatorPrivateEnvironments: [KeyValue]
    }
    type Query { getMatch(id: String): Match }
    """
)
#: AppSync's answer to a missing or refused bearer token.
UNAUTHORIZED_BODY = json.dumps(
    {
        "errors": [
            {
                "errorType": "UnauthorizedException",
                "message": "Valid authorization header not provided.",
            }
        ]
    }
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake API received; header names are lower-case."""

    headers: Mapping[str, str]
    query: str
    variables: Mapping[str, Any]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class FakeMatch:
    """A match as the fake API serves it."""

    problem_image: str = "opthub/problem:latest"
    indicator_image: str = "opthub/indicator:latest"
    problem_public: dict[str, str] = field(default_factory=dict)
    problem_private: dict[str, str] = field(default_factory=dict)
    indicator_public: dict[str, str] = field(default_factory=dict)
    indicator_private: dict[str, str] = field(default_factory=dict)


class OpthubApiServer:
    """The fake OptHub GraphQL API. Set the knobs from the test; they act on the next request."""

    def __init__(self) -> None:
        self.matches: dict[str, FakeMatch] = {}
        #: Answer private values as null (what a non-administrator gets).
        self.hide_private_values = False
        #: Answer every request with these GraphQL errors (HTTP 200, data null).
        self.graphql_errors: list[dict[str, Any]] | None = None
        #: Answer every request with this HTTP status and ``http_body``.
        self.http_status: int | None = None
        self.http_body = "Internal Server Error"
        #: Seconds to wait before answering.
        self.delay_seconds = 0.0
        #: When set, only these bearer tokens are accepted; others get a 401.
        self.accepted_tokens: set[str] | None = None
        self._scripted: deque[tuple[int, str]] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval so that stopping the server does not cost each test 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/graphql"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()  # cut any delay short
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def add_match(self, match_id: str, match: FakeMatch | None = None) -> FakeMatch:
        self.matches[match_id] = match or FakeMatch()
        return self.matches[match_id]

    def respond_once(self, status: int, body: str) -> None:
        """Answer the next request with ``status`` and ``body``, then behave as before."""
        with self._lock:
            self._scripted.append((status, body))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, match_id: str | None = None) -> int:
        """getMatch requests received (for ``match_id`` only, if given)."""
        return sum(
            1
            for r in self.requests
            if "getMatch" in r.query and match_id in (None, r.variables.get("id"))
        )

    def answer(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Record the request, then answer it as the knobs say."""
        payload = _json_object(body)
        request = RecordedRequest(
            headers=headers,
            query=str(payload.get("query", "")),
            variables=dict(payload.get("variables") or {}),
        )
        with self._lock:
            self._requests.append(request)
            scripted = self._scripted.popleft() if self._scripted else None
        if self.delay_seconds:
            self._release.wait(self.delay_seconds)
        if scripted is not None:
            return scripted
        if self.http_status is not None:
            return self.http_status, self.http_body
        if self.accepted_tokens is not None and request.authorization not in {
            f"Bearer {token}" for token in self.accepted_tokens
        }:
            return 401, UNAUTHORIZED_BODY
        if self.graphql_errors is not None:
            return 200, json.dumps({"data": None, "errors": self.graphql_errors})
        result = graphql_sync(
            SCHEMA,
            request.query,
            root_value={"getMatch": self._get_match},
            variable_values=dict(request.variables),
            operation_name=payload.get("operationName"),
        )
        return 200, json.dumps(result.formatted)

    def _get_match(self, _info: GraphQLResolveInfo[Any], id: str | None = None) -> Any:
        match = self.matches.get(id or "")
        if match is None:
            return None
        return {
            "id": id,
            "problem": {"id": "problem", "dockerImage": match.problem_image},
            "indicator": {"id": "indicator", "dockerImage": match.indicator_image},
            "problemPublicEnvironments": _pairs(match.problem_public),
            "indicatorPublicEnvironments": _pairs(match.indicator_public),
            "problemPrivateEnvironments": _pairs(match.problem_private, self.hide_private_values),
            "indicatorPrivateEnvironments": _pairs(
                match.indicator_private, self.hide_private_values
            ),
        }


def _pairs(values: Mapping[str, str], hide: bool = False) -> list[dict[str, str | None]]:
    return [{"key": k, "value": None if hide else v} for k, v in values.items()]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _handler_for(api: OpthubApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, text = api.answer(headers, body)
            data = text.encode("utf-8")
            self.send_response(status)
            is_json = text.startswith(("{", "["))
            self.send_header("Content-Type", "application/json" if is_json else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The client may have given up (a timeout test): nothing left to answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows failures, not every request."""

    return Handler
