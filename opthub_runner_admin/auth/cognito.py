"""Cognito's side of the administrator's login: ``InitiateAuth`` and the tokens it returns.

``CognitoAuth`` logs in (``USER_PASSWORD_AUTH``) and refreshes
(``REFRESH_TOKEN_AUTH``) against one user pool and app client, and has every
access token checked by a ``TokenVerifier`` before it is used. Its Cognito
client comes from the runner's shared boto3 session (``cognito_client``)
and botocore's errors are sorted by ``aws.failures`` like those of SQS and
DynamoDB. The password is never echoed, logged, stored or put into an error
message; tokens are never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..aws.clients import AwsSession, cognito_client, initiate_auth
from ..aws.failures import AwsCallFailed
from ..errors import RunnerError, SetupError, TransientError
from .credentials import Credentials
from .endpoints import ApiSettings
from .verify import DEFAULT_TIMEOUT, TokenVerifier

if TYPE_CHECKING:
    from ..aws.clients import CognitoClient

log = logging.getLogger(__name__)

#: Refresh this many seconds before the access token expires (it lasts about an hour).
DEFAULT_REFRESH_MARGIN = 300.0
#: Cognito error codes for a wrong username or password (or an account that cannot log in).
_BAD_LOGIN_CODES = frozenset(
    {
        "NotAuthorizedException",
        "UserNotFoundException",
        "UserNotConfirmedException",
        "PasswordResetRequiredException",
    }
)


class LoginFailed(SetupError):
    """The username or password was refused: the runner stops before it takes any job."""


class RefreshExpired(RunnerError):
    """The refresh token no longer works (expired, revoked, or the password changed)."""


@dataclass(frozen=True)
class Tokens:
    """A verified login. Times are the access token's own ``iat`` / ``exp`` claims (epoch s)."""

    username: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    issued_at: float
    expires_at: float


class CognitoAuth:
    """Logs in, refreshes and verifies against one user pool and app client.

    ``endpoint_url`` points Cognito (and its JWKS) at a local stack such as a
    moto server. The requests are unsigned: ``InitiateAuth`` needs no AWS
    credentials, and the runner's AWS keys are for SQS and DynamoDB only.
    ``session`` is the runner's shared boto3 session (a fresh one if None).
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        endpoint_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        session: AwsSession | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self.verifier = verifier or TokenVerifier(
            settings=settings, endpoint_url=endpoint_url, timeout=timeout
        )
        self.issuer = self.verifier.issuer
        self.jwks_url = self.verifier.jwks_url
        self._timeout = timeout
        self._session = session
        self._client: CognitoClient | None = None

    def login(self, credentials: Credentials) -> Tokens:
        """``USER_PASSWORD_AUTH``; ``LoginFailed`` for a refused username or password."""
        try:
            response = initiate_auth(
                self._cognito(),
                ClientId=self.settings.cognito_client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": credentials.username, "PASSWORD": credentials.password},
            )
        except AwsCallFailed as exc:
            if exc.transport:
                raise _transport_error("log in", exc) from None
            code, message = exc.code, exc.message.strip()
            if code in _BAD_LOGIN_CODES:
                raise LoginFailed(
                    f"login to OptHub as {credentials.username!r} failed: {message}"
                    " (check the username and password of the competition administrator's"
                    " account)"
                ) from None
            raise self._cognito_error("login", exc) from None
        result = response.get("AuthenticationResult")
        if not result or "RefreshToken" not in result:
            challenge = response.get("ChallengeName", "an unknown challenge")
            raise LoginFailed(
                f"login to OptHub as {credentials.username!r} asks for {challenge}, which the"
                " runner cannot answer: complete it on the OptHub website first"
            )
        tokens = self._tokens(credentials.username, result["AccessToken"], result["RefreshToken"])
        log.info("logged in to OptHub as %s", credentials.username)
        return tokens

    def refresh(self, username: str, refresh_token: str) -> Tokens:
        """``REFRESH_TOKEN_AUTH``; ``RefreshExpired`` when Cognito no longer takes the token."""
        try:
            response = initiate_auth(
                self._cognito(),
                ClientId=self.settings.cognito_client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
            )
        except AwsCallFailed as exc:
            if exc.transport:
                raise _transport_error("refresh the login", exc) from None
            code, message = exc.code, exc.message.strip()
            if code in _BAD_LOGIN_CODES:
                raise RefreshExpired(f"the OptHub login of {username} ended: {message}") from None
            raise self._cognito_error("refresh the login", exc) from None
        result = response.get("AuthenticationResult") or {}
        if "AccessToken" not in result:
            raise RefreshExpired(f"Cognito answered the refresh of {username} without a token")
        # Cognito returns a new refresh token only when rotation is enabled.
        tokens = self._tokens(
            username, result["AccessToken"], result.get("RefreshToken", refresh_token)
        )
        log.debug("refreshed the OptHub login of %s", username)
        return tokens

    def verify(self, access_token: str) -> dict[str, Any]:
        """The claims of a valid access token (see ``TokenVerifier.verify``)."""
        return self.verifier.verify(access_token)

    def _tokens(self, username: str, access_token: str, refresh_token: str) -> Tokens:
        claims = self.verify(access_token)
        return Tokens(
            username=username,
            access_token=access_token,
            refresh_token=refresh_token,
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
        )

    def _cognito(self) -> CognitoClient:
        # Made on first use so that building a CognitoAuth touches nothing.
        if self._client is None:
            self._client = cognito_client(
                session=self._session,
                region_name=self.settings.cognito_region,
                endpoint_url=self.endpoint_url,
                timeout=self._timeout,
            )
        return self._client

    def _cognito_error(self, action: str, exc: AwsCallFailed) -> RunnerError:
        if exc.transient:
            return TransientError(f"Cognito could not {action} now: {exc.described}")
        return SetupError(
            f"Cognito refused to {action}: {exc.described} (check 'cognito_region',"
            f" 'cognito_user_pool_id' = {self.settings.cognito_user_pool_id},"
            f" 'cognito_client_id' = {self.settings.cognito_client_id})"
        )


def _transport_error(action: str, exc: AwsCallFailed) -> RunnerError:
    """Network trouble passes; any other botocore error is a setup the operator must fix."""
    if exc.transient:
        return TransientError(f"cannot reach Cognito to {action} ({exc.type_name})")
    # Only the type: botocore's messages may quote parameter values, the password among them.
    return SetupError(f"cannot {action} with Cognito ({exc.type_name})")
