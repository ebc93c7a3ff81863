"""Match information from the OptHub GraphQL API (AWS AppSync), as the contract describes.

Every error is sorted into what the worker can act on: ``TransientError``
(network, timeouts, 5xx, throttling: back off and retry), ``UnknownMatch`` and
``AdminError`` (a login that is not the match's administrator, a refused
token, a misconfigured ``api_url``: only the administrator can fix it). None of
them may become a Failed item for a participant.

The access token is asked for on every call, so that a token refreshed by the
login keeps working without rebuilding this source. Neither the token nor a
private value is ever logged or put in an error message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import requests
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (
    TransportError,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.requests import RequestsHTTPTransport

from ..errors import AdminError, TransientError
from .base import ImageSpec, MatchSpec, UnknownMatch

log = logging.getLogger(__name__)

#: The contract's query, verbatim.
GET_MATCH_QUERY = """
query getMatch($id: String) {
  getMatch(id: $id) {
    id
    problem { dockerImage }
    indicator { dockerImage }
    problemPublicEnvironments { key value }
    indicatorPublicEnvironments { key value }
    problemPrivateEnvironments { key value }
    indicatorPrivateEnvironments { key value }
  }
}
"""

#: Seconds one API call may take (connect and read) before it counts as transient.
DEFAULT_TIMEOUT = 30.0

#: HTTP statuses worth retrying; other 4xx mean the request or the login is wrong.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_AUTH_STATUSES = frozenset({401, 403})
#: Words in a GraphQL error's type or message that mark a passing condition
#: (AppSync's own error types and those of the resolvers behind it).
_TRANSIENT_WORDS = (
    "throttl",
    "timeout",
    "timed out",
    "toomanyrequests",
    "limitexceeded",
    "unavailable",
    "internalfailure",
    "internal server error",
    "internalserver",
    "internalerror",
    "serviceexception",
    "try again",
)
_AUTH_WORDS = ("unauthorized", "not authorized", "accessdenied", "access denied", "forbidden")
#: Longest piece of a server's error text quoted in a log line.
_QUOTE_LIMIT = 300


def _no_payloads(record: logging.LogRecord) -> bool:
    """Drop gql's DEBUG lines: they hold whole answers, private values included."""
    return record.levelno > logging.DEBUG


# Installed at import, so that running the runner at DEBUG cannot print secrets.
logging.getLogger("gql.transport.requests").addFilter(_no_payloads)


class GraphqlMatchSource:
    """Looks matches up with ``getMatch``, authenticated with ``Authorization: Bearer <token>``.

    A new gql client (and HTTP session) is made for each call: gql's sync
    client refuses to be entered by two threads at once, and calls are rare
    behind ``CachedMatchSource``.
    """

    def __init__(
        self,
        api_url: str,
        token: Callable[[], str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.api_url = api_url
        self._token = token
        self._timeout = timeout

    def get(self, match_id: str) -> MatchSpec:
        """Fetch ``match_id`` (bare UUID); see the module docs for the errors."""
        data = self._query(match_id)
        match = data.get("getMatch")
        if match is None:
            raise UnknownMatch(
                f"match {match_id} was not found by the OptHub API at {self.api_url}"
                " (check the match id and 'api_url')"
            )
        if not isinstance(match, Mapping):
            raise AdminError(
                f"match {match_id}: the OptHub API answered getMatch with a non-object"
            )
        spec = _to_spec(match_id, match)
        log.info(
            "fetched match %s: problem %s (%d variables), indicator %s (%d variables)",
            match_id,
            spec.problem.image,
            len(spec.problem.environment),
            spec.indicator.image,
            len(spec.indicator.environment),
        )
        return spec

    def _query(self, match_id: str) -> Mapping[str, Any]:
        statuses: list[int] = []
        transport = RequestsHTTPTransport(
            url=self.api_url,
            headers={"Authorization": f"Bearer {self._token()}"},
            retries=0,  # the worker backs off; retrying here would hold a slot
            # Each response's status, because gql hides it when the body is JSON.
            hooks={"response": [lambda response, *_, **__: statuses.append(response.status_code)]},
        )
        request = GraphQLRequest(GET_MATCH_QUERY, variable_values={"id": match_id})
        try:
            with Client(transport=transport, fetch_schema_from_transport=False) as session:
                data: dict[str, Any] = session.execute(
                    request, extra_args={"timeout": self._timeout}
                )
        except TransportQueryError as exc:
            raise _query_error(match_id, exc, statuses[-1] if statuses else None) from None
        except TransportServerError as exc:
            raise _status_error(match_id, exc.code, self.api_url) from None
        except TransportProtocolError:
            raise AdminError(
                f"match {match_id}: {self.api_url} did not answer like a GraphQL API"
                " (check 'api_url')"
            ) from None
        except (TransportError, requests.RequestException, OSError) as exc:
            raise TransientError(
                f"match {match_id}: the OptHub API is unreachable ({type(exc).__name__})"
            ) from exc
        return data


def _status_error(match_id: str, status: int | None, api_url: str) -> Exception:
    """The error for a failed HTTP exchange whose body was not a GraphQL answer."""
    if status in _AUTH_STATUSES:
        return _login_refused(match_id, status)
    if status is None or status >= 500 or status in _TRANSIENT_STATUSES:
        return TransientError(f"match {match_id}: the OptHub API answered HTTP {status}")
    return AdminError(
        f"match {match_id}: the OptHub API at {api_url} answered HTTP {status} (check 'api_url')"
    )


def _query_error(match_id: str, exc: TransportQueryError, status: int | None) -> Exception:
    """Sort a GraphQL ``errors`` answer by its HTTP status first, then by its text."""
    if status in _AUTH_STATUSES:
        return _login_refused(match_id, status)
    text = _errors_text(exc.errors)
    if (status is not None and status >= 500) or status in _TRANSIENT_STATUSES:
        return TransientError(f"match {match_id}: the OptHub API failed: {text}")
    lowered = text.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return _not_administrator(match_id, f"the API refused access: {text}")
    if any(word in lowered for word in _TRANSIENT_WORDS):
        return TransientError(f"match {match_id}: the OptHub API failed: {text}")
    return AdminError(f"match {match_id}: the OptHub API answered with an error: {text}")


def _errors_text(errors: Any) -> str:
    """One line quoting the server's errors (type and message, nothing of ours)."""
    parts: list[str] = []
    for error in errors if isinstance(errors, list) else [errors]:
        if isinstance(error, Mapping):
            extensions = error.get("extensions")
            code = extensions.get("code") if isinstance(extensions, Mapping) else None
            kind = error.get("errorType") or code or ""
            message = str(error.get("message", ""))
            parts.append(f"{kind}: {message}" if kind else message)
        else:
            parts.append(str(error))
    text = " | ".join(parts).replace("\n", " ").strip() or "no detail"
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."


def _login_refused(match_id: str, status: int | None) -> AdminError:
    return AdminError(
        f"match {match_id}: the OptHub API refused the login (HTTP {status});"
        " restart the runner and log in with the competition administrator's account"
    )


def _not_administrator(match_id: str, why: str) -> AdminError:
    return AdminError(
        f"the logged-in account is not the administrator of match {match_id} ({why}):"
        " run 'opthub-runner logout', then start the runner again and log in with the"
        " competition administrator's account (a restart alone reuses the cached login)"
    )


def _to_spec(match_id: str, match: Mapping[str, Any]) -> MatchSpec:
    return MatchSpec(
        match_id=match_id,
        problem=ImageSpec(
            image=_image(match_id, match, "problem"),
            environment=_environment(match_id, match, "problem"),
        ),
        indicator=ImageSpec(
            image=_image(match_id, match, "indicator"),
            environment=_environment(match_id, match, "indicator"),
        ),
    )


def _image(match_id: str, match: Mapping[str, Any], role: str) -> str:
    holder = match.get(role)
    image = holder.get("dockerImage") if isinstance(holder, Mapping) else None
    if not isinstance(image, str) or not image.strip():
        raise AdminError(f"match {match_id} has no {role} Docker image set in OptHub")
    return image.strip()


def _environment(match_id: str, match: Mapping[str, Any], role: str) -> dict[str, str]:
    """Public then private values (private wins); a hidden private value is an error."""
    environment = _pairs(match_id, match.get(f"{role}PublicEnvironments"), f"{role} public")
    private = match.get(f"{role}PrivateEnvironments")
    if private is None:
        # The list itself withheld: the same refusal as withheld values.
        raise _not_administrator(match_id, f"its {role} private environment came back null")
    for key, value in _raw_pairs(match_id, private, f"{role} private"):
        if value is None:
            raise _not_administrator(match_id, f"the {role} private value {key!r} came back null")
        environment[key] = str(value)
    return environment


def _pairs(match_id: str, raw: Any, what: str) -> dict[str, str]:
    environment: dict[str, str] = {}
    for key, value in _raw_pairs(match_id, raw, what):
        if value is None:
            log.warning("match %s: %s variable %s is null, passed as ''", match_id, what, key)
        environment[key] = "" if value is None else str(value)
    return environment


def _raw_pairs(match_id: str, raw: Any, what: str) -> list[tuple[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise AdminError(f"match {match_id}: the {what} environment is not a list")
    pairs: list[tuple[str, Any]] = []
    for item in raw:
        key = item.get("key") if isinstance(item, Mapping) else None
        if not isinstance(key, str) or not key:
            raise AdminError(f"match {match_id}: the {what} environment has an entry without a key")
        pairs.append((key, item.get("value")))
    return pairs
