"""The administrator's login: real Cognito calls and JWKS verification against moto.

moto signs its tokens with one fixed RSA key (shipped with moto) and serves the
matching JWKS, always with a one-hour lifetime; refreshes are forced with an
injected clock rather than by waiting.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from opthub_runner_admin.auth.cognito import CognitoAuth, LoginFailed, RefreshExpired, Tokens
from opthub_runner_admin.auth.credentials import (
    PASSWORD_ENV,
    USERNAME_ENV,
    Credentials,
    read_credentials,
)
from opthub_runner_admin.auth.endpoints import PRODUCTION_API
from opthub_runner_admin.auth.login_state import LoginState
from opthub_runner_admin.auth.provider import LoginNeeded, TokenProvider, login_for_runner
from opthub_runner_admin.auth.token_file import TokenCache, default_cache_path, remove_token_cache
from opthub_runner_admin.auth.verify import (
    ClockSkewed,
    TokenInvalid,
    TokenVerifier,
    UnknownUserPool,
    issuer_of,
    jwks_url_of,
)
from opthub_runner_admin.cli.run_commands import ADMIN_NOTE, prompt_credentials
from opthub_runner_admin.errors import FatalError, SetupError, TransientError
from opthub_runner_admin.platform_side.emulators import MotoServer
from tests.support.api_fixtures import CognitoPool

#: What moto's tokens live for (it ignores the app client's AccessTokenValidity).
MOTO_TOKEN_SECONDS = 3600


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's login variables or writes to their home."""
    monkeypatch.delenv(USERNAME_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def auth(cognito_pool: CognitoPool) -> CognitoAuth:
    return CognitoAuth(cognito_pool.settings(), endpoint_url=cognito_pool.endpoint_url)


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "config" / "opthub-runner" / "tokens.json")


def credentials(pool: CognitoPool, *, from_environment: bool = False) -> Credentials:
    return Credentials(pool.username, pool.password, from_environment=from_environment)


def no_prompt() -> Credentials:
    raise AssertionError("the provider prompted although it should not have")


class Reader:
    """A credentials reader that counts how often it is asked."""

    def __init__(self, value: Credentials) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> Credentials:
        self.calls += 1
        return self.value


class Clock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@functools.cache
def moto_signing_key() -> Any:
    """The private key moto signs every token with (it ships with moto)."""
    return jwt.algorithms.RSAAlgorithm.from_jwk(
        load_resource("cognitoidp/resources/jwks-private.json")
    )


def forge(claims: dict[str, Any], key: Any = None) -> str:
    """A token signed with moto's own key (or ``key``), with the key id moto's JWKS lists."""
    signing_key = moto_signing_key() if key is None else key
    return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": "dummy"})


def good_claims(pool: CognitoPool, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer_of(pool.settings()),
        "client_id": pool.client_id,
        "token_use": "access",
        "sub": "someone",
        "username": pool.username,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


# --- login, refresh, verification ---------------------------------------------------


def test_login_returns_a_verified_access_token(
    cognito_pool: CognitoPool, auth: CognitoAuth
) -> None:
    tokens = auth.login(credentials(cognito_pool))

    claims = auth.verify(tokens.access_token)
    assert claims["client_id"] == cognito_pool.client_id
    # moto writes Cognito's own issuer whatever endpoint serves it.
    assert claims["iss"] == (
        f"https://cognito-idp.{cognito_pool.region}.amazonaws.com/{cognito_pool.user_pool_id}"
    )
    assert claims["username"] == cognito_pool.username
    assert tokens.username == cognito_pool.username
    assert tokens.expires_at - tokens.issued_at == MOTO_TOKEN_SECONDS
    assert tokens.refresh_token


def test_jwks_comes_from_the_endpoint_in_use(cognito_pool: CognitoPool, auth: CognitoAuth) -> None:
    assert auth.jwks_url == (
        f"{cognito_pool.endpoint_url}/{cognito_pool.user_pool_id}/.well-known/jwks.json"
    )
    assert jwks_url_of(PRODUCTION_API) == (
        "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_9TAMGx5NT"
        "/.well-known/jwks.json"
    )
    assert issuer_of(PRODUCTION_API) == (
        "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_9TAMGx5NT"
    )


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_refused_login_is_login_failed_without_the_password(
    cognito_pool: CognitoPool, auth: CognitoAuth, who: str
) -> None:
    username = cognito_pool.username if who == "wrong password" else "nobody"
    password = "Wr0ng-password-!"

    with pytest.raises(LoginFailed) as caught:
        auth.login(Credentials(username, password))

    message = str(caught.value)
    assert isinstance(caught.value, FatalError)
    assert repr(username) in message
    assert password not in message
    assert "\n" not in message


def test_refresh_returns_a_new_valid_token(cognito_pool: CognitoPool, auth: CognitoAuth) -> None:
    first = auth.login(credentials(cognito_pool))

    second = auth.refresh(first.username, first.refresh_token)

    assert second.access_token != first.access_token
    assert auth.verify(second.access_token)["client_id"] == cognito_pool.client_id
    assert second.refresh_token == first.refresh_token  # Cognito does not rotate by default


def test_revoked_refresh_token_is_refresh_expired(
    cognito_pool: CognitoPool, auth: CognitoAuth
) -> None:
    tokens = auth.login(credentials(cognito_pool))
    cognito_pool.end_sessions()

    with pytest.raises(RefreshExpired):
        auth.refresh(tokens.username, tokens.refresh_token)


def test_a_correctly_forged_token_is_accepted(cognito_pool: CognitoPool, auth: CognitoAuth) -> None:
    # The control for the rejections below: the forging itself is sound.
    assert auth.verify(forge(good_claims(cognito_pool)))["username"] == cognito_pool.username


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"client_id": "another-client"}, "another app client"),
        ({"exp": int(time.time()) - 600}, "expired"),
        (
            {"iss": "https://cognito-idp.ap-northeast-1.amazonaws.com/elsewhere"},
            "another user pool",
        ),
        ({"token_use": "id"}, "expected an access token"),
    ],
)
def test_tokens_with_wrong_claims_are_rejected(
    cognito_pool: CognitoPool, auth: CognitoAuth, changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(TokenInvalid, match=expected):
        auth.verify(forge(good_claims(cognito_pool, **changes)))


def skewed_verifier(pool: CognitoPool, offset: float) -> TokenVerifier:
    """A verifier whose clock is ``offset`` seconds off the real (and moto's) time."""
    return TokenVerifier(
        settings=pool.settings(),
        endpoint_url=pool.endpoint_url,
        clock=lambda: time.time() + offset,
    )


@pytest.mark.parametrize("offset", [-1.5, -45.0, 45.0])
def test_login_survives_a_clock_within_the_leeway(cognito_pool: CognitoPool, offset: float) -> None:
    # The case: a host 1.5 s behind Cognito made PyJWT refuse the new token's iat.
    verifier = skewed_verifier(cognito_pool, offset)
    auth = CognitoAuth(
        cognito_pool.settings(), endpoint_url=cognito_pool.endpoint_url, verifier=verifier
    )

    tokens = auth.login(credentials(cognito_pool))

    assert tokens.username == cognito_pool.username
    assert auth.verify(tokens.access_token)["client_id"] == cognito_pool.client_id


def test_not_before_within_the_leeway_is_accepted(cognito_pool: CognitoPool) -> None:
    verifier = skewed_verifier(cognito_pool, 0.0)
    token = forge(good_claims(cognito_pool, nbf=int(time.time()) + 30))

    assert verifier.verify(token)["username"] == cognito_pool.username


@pytest.mark.parametrize(
    ("offset", "expected"),
    # The token's iat is whole seconds and the login takes time: allow for both.
    [(-90.0, "clock is [89][0-9] s behind Cognito's"), (3700.0, "clock is at least .* ahead")],
)
def test_a_clock_beyond_the_leeway_is_named_in_one_line(
    cognito_pool: CognitoPool, offset: float, expected: str
) -> None:
    auth = CognitoAuth(
        cognito_pool.settings(),
        endpoint_url=cognito_pool.endpoint_url,
        verifier=skewed_verifier(cognito_pool, offset),
    )

    with pytest.raises(ClockSkewed, match=expected) as raised:
        auth.login(credentials(cognito_pool))

    text = str(raised.value)
    assert "\n" not in text
    assert "timedatectl" in text
    # The old message blamed the pool, client and region instead of the clock.
    assert "cognito_user_pool_id" not in text


def test_token_signed_by_another_key_is_rejected(
    cognito_pool: CognitoPool, auth: CognitoAuth
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(TokenInvalid, match="signature"):
        auth.verify(forge(good_claims(cognito_pool), key=other_key))


def test_unreachable_jwks_is_transient(cognito_pool: CognitoPool) -> None:
    down = MotoServer()  # a port nobody listens on
    auth = CognitoAuth(cognito_pool.settings(), endpoint_url=down.endpoint_url, timeout=2)

    with pytest.raises(TransientError):
        auth.verify(forge(good_claims(cognito_pool)))


def test_a_pool_without_signing_keys_is_a_setup_error(cognito_pool: CognitoPool) -> None:
    # Cognito answers 404 for the JWKS of a pool that does not exist (moto serves its one
    # key for any pool id, so a real HTTP server answers 404 here): no retry can help.
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        auth = CognitoAuth(cognito_pool.settings(), endpoint_url=endpoint, timeout=5)
        with pytest.raises(UnknownUserPool, match="has no signing keys") as raised:
            auth.verify(forge(good_claims(cognito_pool)))
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(raised.value, SetupError)
    assert "HTTP 404" in str(raised.value) and "cognito_user_pool_id" in str(raised.value)


# --- the provider: caching, refreshing, logging in again ----------------------------


def test_provider_logs_in_once_and_caches_the_login_privately(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    read = Reader(credentials(cognito_pool))
    provider = TokenProvider(auth, read=read, cache=cache)

    provider.start()
    token = provider.access_token()

    assert read.calls == 1
    assert provider.username == cognito_pool.username
    assert auth.verify(token)["client_id"] == cognito_pool.client_id
    assert provider.access_token() == token  # no refresh while far from expiry
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700
    text = cache.path.read_text(encoding="utf-8")
    assert cognito_pool.password not in text
    assert cognito_pool.user_pool_id in text
    assert not list(cache.path.parent.glob(".*.tmp"))  # the atomic write left nothing behind


def test_second_provider_resumes_from_the_cache_without_prompting(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    TokenProvider(auth, read=Reader(credentials(cognito_pool)), cache=cache).start()

    again = TokenProvider(auth, read=no_prompt, cache=cache)

    assert auth.verify(again.access_token())["username"] == cognito_pool.username
    assert again.username == cognito_pool.username


def test_dead_cached_login_is_forgotten_and_prompted_for(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    TokenProvider(auth, read=Reader(credentials(cognito_pool)), cache=cache).start()
    cognito_pool.end_sessions()
    read = Reader(credentials(cognito_pool))

    again = TokenProvider(auth, read=read, cache=cache)
    again.start()

    assert read.calls == 1
    assert auth.verify(again.access_token())


def test_cache_readable_by_others_is_ignored(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    TokenProvider(auth, read=Reader(credentials(cognito_pool)), cache=cache).start()
    cache.path.chmod(0o644)
    read = Reader(credentials(cognito_pool))

    TokenProvider(auth, read=read, cache=cache).start()

    assert read.calls == 1
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600  # rewritten privately


def test_cached_login_of_another_pool_is_not_used(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    TokenProvider(auth, read=Reader(credentials(cognito_pool)), cache=cache).start()
    settings = cognito_pool.settings()
    other_pool = dataclasses.replace(settings, cognito_user_pool_id="ap-northeast-1_other")
    other_client = dataclasses.replace(settings, cognito_client_id="other-client")

    assert cache.load(other_pool) is None
    assert cache.load(other_client) is None
    assert cache.load(settings, "someone-else") is None
    found = cache.load(settings, cognito_pool.username)
    assert found is not None
    assert found.username == cognito_pool.username


def test_token_is_refreshed_before_it_expires(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    clock = Clock()
    read = Reader(credentials(cognito_pool))
    refreshes: list[bool] = []
    provider = TokenProvider(
        auth,
        read=read,
        cache=cache,
        margin_seconds=300,
        clock=clock,
        on_refresh=lambda: refreshes.append(True),
    )
    first = provider.access_token()
    unchanged = provider.access_token()

    clock.offset = MOTO_TOKEN_SECONDS - 200  # 200 s left: inside the 300 s margin
    second = provider.access_token()

    assert unchanged == first
    assert second != first
    assert auth.verify(second)["client_id"] == cognito_pool.client_id
    assert read.calls == 1  # refreshed, not logged in again
    assert refreshes == [True]  # reported once (the token_refreshes metric)


def test_ended_login_with_environment_credentials_logs_in_again(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(USERNAME_ENV, cognito_pool.username)
    monkeypatch.setenv(PASSWORD_ENV, cognito_pool.password)
    clock = Clock()
    provider = TokenProvider(auth, read=read_credentials, cache=cache, clock=clock)
    first = provider.access_token()
    cognito_pool.end_sessions()  # the refresh token dies

    clock.offset = MOTO_TOKEN_SECONDS - 60
    second = provider.access_token()

    assert second != first
    assert auth.verify(second)["username"] == cognito_pool.username


def test_ended_login_with_prompted_credentials_waits_for_the_password(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    clock = Clock()
    read = Reader(credentials(cognito_pool))
    heard: list[LoginState] = []
    provider = TokenProvider(auth, read=read, cache=cache, clock=clock, listener=heard.append)
    provider.access_token()
    cognito_pool.end_sessions()  # moto refuses a revoked refresh token as an expired one

    clock.offset = MOTO_TOKEN_SECONDS - 60
    with pytest.raises(LoginNeeded) as caught:
        provider.access_token()

    message = str(caught.value)
    assert message.startswith(f"the OptHub login of {cognito_pool.username} has ended (")
    assert "start the runner again in a terminal" in message  # nobody here can type it
    assert "\n" not in message
    assert heard[-1].needed == message and provider.state == heard[-1]
    assert read.calls == 1  # the typed password was not kept to log in again
    assert cache.load(cognito_pool.settings()) is None  # the dead login is forgotten


def test_cognito_outage_keeps_the_current_token_until_it_expires(
    moto_server_factory: Callable[..., MotoServer], cache: TokenCache
) -> None:
    server = moto_server_factory()  # a private server this test may stop
    pool = _pool_on(server)
    auth = CognitoAuth(pool.settings(), endpoint_url=server.endpoint_url, timeout=2)
    clock = Clock()
    provider = TokenProvider(auth, read=Reader(credentials(pool)), cache=cache, clock=clock)
    token = provider.access_token()
    server.stop()

    clock.offset = MOTO_TOKEN_SECONDS - 200  # time to refresh, but Cognito is away
    assert provider.access_token() == token

    clock.offset = MOTO_TOKEN_SECONDS + 1  # expired: nothing valid left to hand out
    with pytest.raises(TransientError):
        provider.access_token()


def _pool_on(server: MotoServer) -> CognitoPool:
    import boto3

    admin = boto3.client(
        "cognito-idp",
        endpoint_url=server.endpoint_url,
        region_name="ap-northeast-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pool_id = admin.create_user_pool(PoolName="outage")["UserPool"]["Id"]
    client_id = admin.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="runner",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    pool = CognitoPool(
        endpoint_url=server.endpoint_url,
        region="ap-northeast-1",
        user_pool_id=pool_id,
        client_id=client_id,
        username="admin",
        password="0utage-Passw0rd!",
        admin=admin,
    )
    pool.add_user(pool.username, pool.password)
    return pool


def test_logout_removes_the_cache(
    cognito_pool: CognitoPool, auth: CognitoAuth, cache: TokenCache
) -> None:
    provider = TokenProvider(auth, read=Reader(credentials(cognito_pool)), cache=cache)
    provider.start()
    assert cache.path.exists()

    provider.logout()

    assert not cache.path.exists()
    assert provider.username is None
    assert remove_token_cache(cache.path) is False


def test_login_for_runner_uses_the_default_cache(
    cognito_pool: CognitoPool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    read = Reader(credentials(cognito_pool))

    provider = login_for_runner(
        cognito_pool.settings(), endpoint_url=cognito_pool.endpoint_url, read=read
    )

    assert read.calls == 1  # logged in at once, before any job
    assert default_cache_path() == tmp_path / "xdg" / "opthub-runner" / "tokens.json"
    assert default_cache_path().exists()
    assert provider.access_token()
    assert remove_token_cache() is True
    assert not default_cache_path().exists()


def test_login_for_runner_stops_on_a_wrong_password(cognito_pool: CognitoPool) -> None:
    with pytest.raises(LoginFailed):
        login_for_runner(
            cognito_pool.settings(),
            endpoint_url=cognito_pool.endpoint_url,
            read=lambda: Credentials(cognito_pool.username, "not-it"),
        )


def test_secrets_stay_out_of_logs_and_reprs(
    cognito_pool: CognitoPool,
    auth: CognitoAuth,
    cache: TokenCache,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Its own level too: a CLI test run before in this process leaves botocore at WARNING.
    caplog.set_level(logging.DEBUG, logger="botocore")
    clock = Clock()
    provider = TokenProvider(auth, read=Reader(credentials(cognito_pool)), cache=cache, clock=clock)
    provider.access_token()
    clock.offset = MOTO_TOKEN_SECONDS - 200
    token = provider.access_token()
    tokens = auth.login(credentials(cognito_pool))

    assert "Sending http request" in caplog.text  # botocore did log at DEBUG...
    assert cognito_pool.password not in caplog.text  # ...but not the password
    assert "AuthenticationResult" not in caplog.text  # ...nor the answer's body
    for secret in (token, tokens.access_token, tokens.refresh_token):
        assert secret not in caplog.text
        assert secret not in repr(tokens)
    assert cognito_pool.password not in repr(credentials(cognito_pool))


# --- reading the credentials ---------------------------------------------------------


def test_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USERNAME_ENV, "admin")
    monkeypatch.setenv(PASSWORD_ENV, "env-Passw0rd")

    found = read_credentials()

    assert found == Credentials("admin", "env-Passw0rd", from_environment=True)


def test_no_environment_and_no_prompt_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USERNAME_ENV, "admin")  # one of the two is not enough

    with pytest.raises(FatalError, match=PASSWORD_ENV):
        read_credentials()


@click.command()
def _show_login() -> None:
    found = read_credentials(prompt_credentials)
    click.echo(f"user={found.username} length={len(found.password)} env={found.from_environment}")


def test_prompt_hides_the_password() -> None:
    password = "typed-Passw0rd-xyz"

    result = CliRunner().invoke(_show_login, input=f"admin\n{password}\n")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(ADMIN_NOTE)
    assert "Username: admin" in result.output
    assert "Password: " in result.output
    assert f"user=admin length={len(password)} env=False" in result.output
    assert password not in result.output


def test_closed_prompt_is_fatal() -> None:
    result = CliRunner().invoke(_show_login, input="")

    assert isinstance(result.exception, FatalError)
    assert PASSWORD_ENV in str(result.exception)


def test_prompt_through_a_real_stdin_pipe(tmp_path: Path) -> None:
    password = "piped-Passw0rd-abc"
    script = (
        "from opthub_runner_admin.auth.credentials import read_credentials\n"
        "from opthub_runner_admin.cli.run_commands import prompt_credentials\n"
        "c = read_credentials(prompt_credentials)\n"
        f"print('ok' if (c.username, c.password) == ('admin', {password!r}) else 'bad')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (USERNAME_ENV, PASSWORD_ENV)}

    done = subprocess.run(
        [sys.executable, "-c", script],
        input=f"admin\n{password}\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        start_new_session=True,  # no controlling terminal: getpass reads the pipe
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")
    assert ADMIN_NOTE in done.stdout
    assert password not in done.stdout + done.stderr


def test_tokens_repr_hides_tokens() -> None:
    tokens = Tokens("admin", "access-secret", "refresh-secret", issued_at=0, expires_at=1)

    assert "access-secret" not in repr(tokens)
    assert "refresh-secret" not in repr(tokens)
    assert "admin" in repr(tokens)
