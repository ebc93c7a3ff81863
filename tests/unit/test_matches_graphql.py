"""getMatch through the real gql client against a real HTTP GraphQL server, and the match cache."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from opthub_runner_admin.errors import AdminError, TransientError
from opthub_runner_admin.matches.base import ImageSpec, MatchSpec, UnknownMatch
from opthub_runner_admin.matches.cached import CachedMatchSource
from opthub_runner_admin.matches.graphql import GraphqlMatchSource
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer

MATCH = "3b7c0b1e-0000-4000-8000-000000000001"
OTHER = "3b7c0b1e-0000-4000-8000-000000000002"
TOKEN = "header.payload.signature-1"
SECRET = "pr1vate-s3cret-value"


@pytest.fixture
def api(opthub_api: OpthubApiServer) -> OpthubApiServer:
    """The fake API with MATCH whose problem has a public value overridden by a private one."""
    opthub_api.accepted_tokens = {TOKEN}
    opthub_api.add_match(
        MATCH,
        FakeMatch(
            problem_image="opthub/sphere:2",
            indicator_image="opthub/best:1",
            problem_public={"DIM": "2", "SEED": "public"},
            problem_private={"SEED": SECRET, "KEY": "k"},
            indicator_public={"MODE": "min"},
            indicator_private={"TOKEN": "t"},
        ),
    )
    return opthub_api


def source_for(api: OpthubApiServer, *, timeout: float = 5.0) -> GraphqlMatchSource:
    return GraphqlMatchSource(api.url, lambda: TOKEN, timeout=timeout)


def test_get_match_merges_public_then_private(api: OpthubApiServer) -> None:
    spec = source_for(api).get(MATCH)

    assert spec.match_id == MATCH
    assert spec.problem.image == "opthub/sphere:2"
    assert dict(spec.problem.environment) == {"DIM": "2", "SEED": SECRET, "KEY": "k"}
    assert spec.indicator.image == "opthub/best:1"
    assert dict(spec.indicator.environment) == {"MODE": "min", "TOKEN": "t"}


def test_request_carries_bearer_token_and_the_match_id(api: OpthubApiServer) -> None:
    source_for(api).get(MATCH)

    [request] = api.requests
    assert request.authorization == f"Bearer {TOKEN}"
    assert request.variables == {"id": MATCH}
    assert "problemPrivateEnvironments" in request.query
    assert "indicatorPrivateEnvironments" in request.query


def test_token_is_asked_for_on_every_call(api: OpthubApiServer) -> None:
    tokens: Iterator[str] = iter(["first-token", "second-token"])
    api.accepted_tokens = {"first-token", "second-token"}
    source = GraphqlMatchSource(api.url, lambda: next(tokens))

    source.get(MATCH)
    source.get(MATCH)

    assert [r.authorization for r in api.requests] == [
        "Bearer first-token",
        "Bearer second-token",
    ]


def test_unknown_match_names_it(api: OpthubApiServer) -> None:
    with pytest.raises(UnknownMatch) as caught:
        source_for(api).get(OTHER)

    assert OTHER in str(caught.value)


def test_null_private_values_mean_not_the_administrator(api: OpthubApiServer) -> None:
    api.hide_private_values = True

    with pytest.raises(AdminError) as caught:
        source_for(api).get(MATCH)

    message = str(caught.value)
    assert not isinstance(caught.value, UnknownMatch)
    assert f"not the administrator of match {MATCH}" in message
    assert "log in with the competition administrator's account" in message
    # A restart alone would log in again from the cached session of the wrong account.
    assert "run 'opthub-runner logout'" in message
    assert "\n" not in message


def test_refused_token_is_an_admin_error(api: OpthubApiServer) -> None:
    source = GraphqlMatchSource(api.url, lambda: "someone-elses-token")

    with pytest.raises(AdminError) as caught:
        source.get(MATCH)

    assert "HTTP 401" in str(caught.value)
    assert "someone-elses-token" not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, "Internal Server Error", TransientError),
        (503, '{"errors": [{"message": "Service Unavailable"}]}', TransientError),
        (429, "slow down", TransientError),
        (403, "Forbidden", AdminError),
        (404, "Not Found", AdminError),
    ],
)
def test_http_failures_are_sorted(
    api: OpthubApiServer, status: int, body: str, expected: type[Exception]
) -> None:
    api.http_status = status
    api.http_body = body

    with pytest.raises(expected) as caught:
        source_for(api).get(MATCH)

    assert MATCH in str(caught.value)
    assert type(caught.value) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"errorType": "Lambda:ThrottlingException", "message": "Rate exceeded"}, TransientError),
        ({"errorType": "ExecutionTimeout", "message": "Execution timed out."}, TransientError),
        ({"errorType": "DynamoDB:InternalServerError", "message": "boom"}, TransientError),
        ({"errorType": "Unauthorized", "message": "Not Authorized to access getMatch"}, AdminError),
        ({"message": "Validation error of type FieldUndefined"}, AdminError),
    ],
)
def test_graphql_errors_are_sorted(
    api: OpthubApiServer, error: dict[str, str], expected: type[Exception]
) -> None:
    api.graphql_errors = [error]

    with pytest.raises(expected) as caught:
        source_for(api).get(MATCH)

    assert type(caught.value) is expected
    assert error["message"] in str(caught.value)


def test_graphql_error_with_a_5xx_status_is_transient(api: OpthubApiServer) -> None:
    api.respond_once(502, '{"errors": [{"message": "Bad Gateway"}]}')
    source = source_for(api)

    with pytest.raises(TransientError):
        source.get(MATCH)
    # The next call goes through: nothing was left broken by the failure.
    assert source.get(MATCH).problem.image == "opthub/sphere:2"


def test_slow_api_times_out_as_transient(api: OpthubApiServer) -> None:
    api.delay_seconds = 5.0
    started = time.monotonic()

    with pytest.raises(TransientError):
        source_for(api, timeout=0.3).get(MATCH)

    # It gave up before the slow answer came (no finer bound: CI machines are busy).
    assert time.monotonic() - started < api.delay_seconds


def test_unreachable_api_is_transient(api: OpthubApiServer) -> None:
    url = api.url
    api.stop()

    with pytest.raises(TransientError):
        GraphqlMatchSource(url, lambda: TOKEN, timeout=2.0).get(MATCH)


def test_non_graphql_answer_points_at_api_url(api: OpthubApiServer) -> None:
    api.respond_once(200, "<html>hello</html>")

    with pytest.raises(AdminError, match="api_url"):
        source_for(api).get(MATCH)


def test_neither_token_nor_private_values_are_logged(
    api: OpthubApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source_for(api).get(MATCH)
    api.hide_private_values = True
    with pytest.raises(AdminError):
        source_for(api).get(MATCH)

    assert f"fetched match {MATCH}" in caplog.text
    assert TOKEN not in caplog.text
    assert SECRET not in caplog.text


# --- the cache in front of the API ---------------------------------------------------


def test_a_thousand_lookups_make_one_api_call(api: OpthubApiServer) -> None:
    cached = CachedMatchSource(source_for(api), ttl_seconds=300)

    specs = [cached.get(MATCH) for _ in range(1000)]

    assert api.calls(MATCH) == 1
    assert all(spec == specs[0] for spec in specs)


def test_expired_entry_is_fetched_again(api: OpthubApiServer) -> None:
    now = [1000.0]
    cached = CachedMatchSource(source_for(api), ttl_seconds=60, clock=lambda: now[0])

    cached.get(MATCH)
    now[0] += 59
    cached.get(MATCH)
    assert api.calls(MATCH) == 1

    now[0] += 2
    cached.get(MATCH)
    assert api.calls(MATCH) == 2


def test_matches_are_cached_separately(api: OpthubApiServer) -> None:
    api.add_match(OTHER, FakeMatch(problem_image="other:1"))
    cached = CachedMatchSource(source_for(api), ttl_seconds=300)

    assert cached.get(OTHER).problem.image == "other:1"
    assert cached.get(MATCH).problem.image == "opthub/sphere:2"
    cached.get(OTHER)

    assert (api.calls(MATCH), api.calls(OTHER)) == (1, 1)


def test_concurrent_lookups_share_one_call(api: OpthubApiServer) -> None:
    api.delay_seconds = 0.3  # keep the first call in flight while the others arrive
    cached = CachedMatchSource(source_for(api), ttl_seconds=300)
    results: list[MatchSpec] = []
    lock = threading.Lock()

    def look_up() -> None:
        spec = cached.get(MATCH)
        with lock:
            results.append(spec)

    threads = [threading.Thread(target=look_up) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(results) == 20
    assert api.calls(MATCH) == 1


def test_errors_are_not_cached(api: OpthubApiServer) -> None:
    cached = CachedMatchSource(source_for(api), ttl_seconds=300)
    api.http_status = 500

    with pytest.raises(TransientError):
        cached.get(MATCH)
    api.http_status = None
    spec = cached.get(MATCH)

    assert spec.problem.image == "opthub/sphere:2"
    assert api.calls(MATCH) == 2


def test_concurrent_lookups_share_a_failure(api: OpthubApiServer) -> None:
    api.delay_seconds = 0.3
    api.http_status = 500
    cached = CachedMatchSource(source_for(api), ttl_seconds=300)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def look_up() -> None:
        try:
            cached.get(MATCH)
        except TransientError as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(errors) == 10
    assert api.calls(MATCH) == 1


class _CountingSource:
    """An inner source that counts calls, for the cache's own edge cases."""

    def __init__(self) -> None:
        self.calls = 0

    def get(self, match_id: str) -> MatchSpec:
        self.calls += 1
        image = ImageSpec(image=f"image-{self.calls}")
        return MatchSpec(match_id=match_id, problem=image, indicator=image)


def test_zero_ttl_disables_caching() -> None:
    inner = _CountingSource()
    cached = CachedMatchSource(inner, ttl_seconds=0)

    assert cached.get(MATCH).problem.image == "image-1"
    assert cached.get(MATCH).problem.image == "image-2"


def test_invalidate_forces_a_new_lookup() -> None:
    inner = _CountingSource()
    cached = CachedMatchSource(inner, ttl_seconds=300)

    cached.get(MATCH)
    cached.invalidate(MATCH)
    cached.get(MATCH)

    assert inner.calls == 2
