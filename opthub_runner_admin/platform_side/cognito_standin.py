"""A small real Cognito for the login's life: short tokens, and refresh tokens that end on demand.

moto's access tokens live an hour and its refresh tokens never expire (a
revoked one is refused, which ``cognito_pool.end_sessions`` uses), so a
runner on moto would refresh only after 55 minutes. This stand-in answers
``InitiateAuth`` (``USER_PASSWORD_AUTH``, ``REFRESH_TOKEN_AUTH``) over real
HTTP as Cognito does (JSON 1.1, ``X-Amz-Target``, errors as ``__type`` and
``message``), signs RS256 access tokens of ``token_seconds`` with a key of its
own and serves that key as the pool's JWKS, so that the runner's own
verification runs unchanged. ``end_refresh_tokens`` makes every refresh
token issued so far answer ``NotAuthorizedException: Refresh Token has
expired``, as Cognito does once a token's validity is over.

The runner has one ``endpoint_url`` for SQS, DynamoDB and Cognito: every
request that is not Cognito's (nor the JWKS) is passed on to ``upstream`` (the
test's moto server) as it came, so that a runner process can use it as its
whole AWS. The tests and the season benchmark share it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from opthub_runner_admin.auth.endpoints import ApiSettings

REGION = "ap-northeast-1"
_TARGET = "AWSCognitoIdentityProviderService.InitiateAuth"
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


@dataclass
class StandInCounts:
    logins: int = 0
    refreshes: int = 0
    refused_refreshes: int = 0
    #: Usernames of the password logins, in order.
    who: list[str] = field(default_factory=list)


class CognitoStandIn:
    """One user pool, app client and user; tokens of ``token_seconds``; the rest to ``upstream``."""

    def __init__(self, *, upstream: str | None = None, token_seconds: int = 20) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.token_seconds = token_seconds
        self.user_pool_id = f"{REGION}_{secrets.token_hex(5)}"
        self.client_id = secrets.token_hex(13)
        self.username = "admin@example.com"
        self.password = f"Pw-{secrets.token_hex(8)}!"
        self.counts = StandInCounts()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def settings(self, api_url: str = "http://127.0.0.1:9/graphql") -> ApiSettings:
        return ApiSettings(
            api_url=api_url,
            cognito_region=REGION,
            cognito_user_pool_id=self.user_pool_id,
            cognito_client_id=self.client_id,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def end_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused from now on (its validity is over)."""
        with self._lock:
            self._live.clear()

    # -- answers -------------------------------------------------------------------

    def initiate_auth(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("ClientId") != self.client_id:
            return 400, _error("ResourceNotFoundException", "User pool client does not exist.")
        flow, params = body.get("AuthFlow"), body.get("AuthParameters") or {}
        with self._lock:
            if flow == "USER_PASSWORD_AUTH":
                if (params.get("USERNAME"), params.get("PASSWORD")) != (
                    self.username,
                    self.password,
                ):
                    return 400, _error("NotAuthorizedException", "Incorrect username or password.")
                self.counts.logins += 1
                self.counts.who.append(self.username)
                refresh = secrets.token_urlsafe(32)
                self._live.add(refresh)
                return 200, self._result(refresh_token=refresh)
            if flow == "REFRESH_TOKEN_AUTH":
                if params.get("REFRESH_TOKEN") not in self._live:
                    self.counts.refused_refreshes += 1
                    return 400, _error("NotAuthorizedException", "Refresh Token has expired")
                self.counts.refreshes += 1
                return 200, self._result(refresh_token=None)
        return 400, _error("InvalidParameterException", f"unsupported flow {flow}")

    def _result(self, *, refresh_token: str | None) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "sub": "0000-admin",
            "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{self.user_pool_id}",
            "client_id": self.client_id,
            "origin_jti": secrets.token_hex(8),
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": now,
            "iat": now,
            "exp": now + self.token_seconds,
            "jti": secrets.token_hex(8),
            "username": self.username,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})
        result: dict[str, Any] = {
            "AccessToken": token,
            "ExpiresIn": self.token_seconds,
            "TokenType": "Bearer",
            "IdToken": token,
        }
        if refresh_token is not None:
            result["RefreshToken"] = refresh_token
        return {"AuthenticationResult": result, "ChallengeParameters": {}}

    def jwks(self) -> dict[str, Any]:
        key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**key, "kid": self._kid, "alg": "RS256", "use": "sig"}]}

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.upstream is None:
            return 404, [], b"no upstream"
        response = requests.request(
            method,
            f"{self.upstream}{path}",
            headers={k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS},
            data=body,
            timeout=60,
        )
        kept = [
            (k, v)
            for k, v in response.headers.items()
            if k.lower() not in _HOP_HEADERS and k.lower() != "content-encoding"
        ]
        return response.status_code, kept, response.content


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"__type": kind, "message": message}


def _handler_for(stand_in: CognitoStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            headers = [("Content-Type", "application/x-amz-json-1.1")]
            if status >= 400:
                headers.append(("x-amzn-ErrorType", str(payload["__type"])))
            self._send(status, headers, json.dumps(payload).encode())

        def do_GET(self) -> None:
            if self.path == f"/{stand_in.user_pool_id}/.well-known/jwks.json":
                self._json(200, stand_in.jwks())
                return
            self._send(*stand_in.forward("GET", self.path, dict(self.headers), b""))

        def do_POST(self) -> None:
            body = self._body()
            if self.headers.get("X-Amz-Target") == _TARGET:
                self._json(*stand_in.initiate_auth(json.loads(body or b"{}")))
                return
            self._send(*stand_in.forward("POST", self.path, dict(self.headers), body))

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler
