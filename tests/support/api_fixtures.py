"""The OptHub API side for the tests: the fake GraphQL API, and a Cognito user pool on moto.

``opthub_api`` is a fresh ``OpthubApiServer`` (``platform_side/opthub_api.py``)
for one test.

``cognito_pool`` is a user pool with an app client allowing
``USER_PASSWORD_AUTH`` and ``REFRESH_TOKEN_AUTH`` (one for the session) and a
confirmed user with a known password (one per test, so that revoking a
user's tokens in one test leaves the others alone), on the session's moto
server (``cognito_endpoint``, the ``moto_server`` of ``aws_fixtures``).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
import pytest

from opthub_runner_admin.auth.endpoints import ApiSettings
from opthub_runner_admin.platform_side.emulators import MotoServer
from opthub_runner_admin.platform_side.opthub_api import OpthubApiServer

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

COGNITO_REGION = "ap-northeast-1"


@pytest.fixture
def opthub_api() -> Iterator[OpthubApiServer]:
    """A fresh fake OptHub GraphQL API for one test."""
    api = OpthubApiServer()
    api.start()
    try:
        yield api
    finally:
        api.stop()


# --- Cognito on moto ------------------------------------------------------------------


@pytest.fixture(scope="session")
def cognito_endpoint(moto_server: MotoServer) -> str:
    """The session's moto server (``aws_fixtures``), which also plays Cognito and its JWKS."""
    return moto_server.endpoint_url


@dataclass(frozen=True)
class CognitoPool:
    """A user pool, app client and confirmed user on moto, plus an admin client to change them."""

    endpoint_url: str
    region: str
    user_pool_id: str
    client_id: str
    username: str
    password: str = field(repr=False)
    admin: CognitoIdentityProviderClient = field(repr=False)

    def settings(self, api_url: str = "http://127.0.0.1:9/graphql") -> ApiSettings:
        """The runner's API settings for this pool (the API URL is the test's)."""
        return ApiSettings(
            api_url=api_url,
            cognito_region=self.region,
            cognito_user_pool_id=self.user_pool_id,
            cognito_client_id=self.client_id,
        )

    def add_user(self, username: str, password: str) -> None:
        """Create a confirmed user with a permanent password."""
        self.admin.admin_create_user(
            UserPoolId=self.user_pool_id,
            Username=username,
            TemporaryPassword="Temp-Passw0rd!",
            MessageAction="SUPPRESS",
        )
        self.admin.admin_set_user_password(
            UserPoolId=self.user_pool_id, Username=username, Password=password, Permanent=True
        )

    def end_sessions(self, username: str | None = None) -> None:
        """Revoke the user's refresh tokens, as an expired refresh token would behave."""
        self.admin.admin_user_global_sign_out(
            UserPoolId=self.user_pool_id, Username=username or self.username
        )


@pytest.fixture(scope="session")
def _cognito_client_pool(cognito_endpoint: str) -> CognitoPool:
    """One pool and app client for the session: moto takes a few tenths of a second per pool."""
    # moto checks no keys, but boto3 signs admin calls and needs some.
    admin = boto3.client(
        "cognito-idp",
        endpoint_url=cognito_endpoint,
        region_name=COGNITO_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pool_id = admin.create_user_pool(PoolName=f"opthub-{secrets.token_hex(4)}")["UserPool"]["Id"]
    client_id = admin.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="opthub-runner",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return CognitoPool(
        endpoint_url=cognito_endpoint,
        region=COGNITO_REGION,
        user_pool_id=pool_id,
        client_id=client_id,
        username="",
        password="",
        admin=admin,
    )


@pytest.fixture
def cognito_pool(_cognito_client_pool: CognitoPool) -> CognitoPool:
    """The session's pool with a fresh confirmed user of its own for this test.

    A user per test keeps tests apart: ending one user's sessions (to kill its
    refresh tokens) leaves every other test's logins alone.
    """
    pool = dataclasses.replace(
        _cognito_client_pool,
        username=f"admin-{secrets.token_hex(4)}",
        password=f"Adm1n-{secrets.token_urlsafe(12)}",
    )
    pool.add_user(pool.username, pool.password)
    return pool
