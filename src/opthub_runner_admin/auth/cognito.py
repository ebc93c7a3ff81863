"""The competition administrator's login to OptHub (Amazon Cognito), kept alive for weeks.

Three parts, each replaceable in tests:

- ``read_credentials`` gets the username and password from ``OPTHUB_USERNAME``
  / ``OPTHUB_PASSWORD`` (unattended starts) or from a prompt with a hidden
  password, as the published README shows.
- ``CognitoAuth`` talks to Cognito (``InitiateAuth`` with ``USER_PASSWORD_AUTH``
  and ``REFRESH_TOKEN_AUTH``) and verifies every access token against the
  pool's JWKS: RS256 signature, expiry, ``client_id``, ``token_use`` and
  issuer.
- ``TokenProvider`` hands out a valid access token from any thread, refreshing
  it before it expires, logging in again with credentials taken from the
  environment when the refresh token dies, and otherwise stopping the runner
  with one line for the operator.

A ``TokenCache`` keeps the refresh token between restarts (a 0600 file in the
user's config directory) so that restarting in tmux need not prompt. The
password is never echoed, logged, stored or put into an error message; tokens
are never logged.

Issuer: Cognito signs access tokens with
``iss = https://cognito-idp.<region>.amazonaws.com/<pool id>``. moto (the
local stack of the tests and the demo) writes exactly the same issuer into
its tokens whatever endpoint it is reached at, so the expected issuer never
depends on ``endpoint_url``; only the JWKS address does
(``<endpoint_url>/<pool id>/.well-known/jwks.json``, which moto serves).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import click
import jwt
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..config import ApiSettings
from ..errors import FatalError, RunnerError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

log = logging.getLogger(__name__)

USERNAME_ENV = "OPTHUB_USERNAME"
PASSWORD_ENV = "OPTHUB_PASSWORD"
#: Printed before the prompt, word for word as the published README shows it.
ADMIN_NOTE = "Note: Make sure to authenticate using the competition administrator's account."
#: Refresh this many seconds before the access token expires (it lasts about an hour).
DEFAULT_REFRESH_MARGIN = 300.0
#: Seconds one Cognito or JWKS request may take.
DEFAULT_TIMEOUT = 10.0
#: How long the JWKS is reused before it is fetched again (Cognito rotates keys rarely;
#: an unknown key id makes PyJWT fetch it at once anyway).
_JWKS_LIFESPAN = 3600.0
_CACHE_VERSION = 1
_CACHE_FILE = "tokens.json"
_CACHE_DIR = "opthub-runner"
#: Cognito error codes for a wrong username or password (or an account that cannot log in).
_BAD_LOGIN_CODES = frozenset(
    {
        "NotAuthorizedException",
        "UserNotFoundException",
        "UserNotConfirmedException",
        "PasswordResetRequiredException",
    }
)
#: Cognito error codes that pass on their own.
_TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "InternalErrorException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ThrottlingException",
        "RequestTimeout",
    }
)
_RELOGIN_ADVICE = "restart the runner and log in with the competition administrator's account"
#: Words found in botocore's DEBUG lines that carry a Cognito request body (the
#: password) or answer (the tokens).
_SECRET_MARKERS = ("AuthParameters", "AuthenticationResult")


def _no_auth_bodies(record: logging.LogRecord) -> bool:
    """Drop botocore's DEBUG lines that quote an InitiateAuth request or answer."""
    if record.levelno > logging.DEBUG:
        return True
    message = record.getMessage()
    return not any(marker in message for marker in _SECRET_MARKERS)


# botocore logs whole request and response bodies at DEBUG; installed at import
# so that a runner started with log_level DEBUG still never prints a password.
for _name in ("botocore.endpoint", "botocore.parsers"):
    logging.getLogger(_name).addFilter(_no_auth_bodies)


class LoginFailed(FatalError):
    """The username or password was refused: the runner stops before it takes any job."""


class TokenInvalid(FatalError):
    """A token from Cognito failed verification: wrong pool, client or endpoint, or a forgery."""


class RefreshExpired(RunnerError):
    """The refresh token no longer works (expired, revoked, or the password changed)."""


# --- credentials ------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A username and password; ``from_environment`` marks them as re-usable for a new login.

    Prompted credentials are not kept after the first login: a password typed
    at a terminal should not stay in memory for weeks.
    """

    username: str
    password: str = field(repr=False)
    from_environment: bool = False


def credentials_from_environment() -> Credentials | None:
    """``OPTHUB_USERNAME`` and ``OPTHUB_PASSWORD`` when both are set, else None."""
    username = os.environ.get(USERNAME_ENV, "").strip()
    password = os.environ.get(PASSWORD_ENV, "")
    if username and password:
        return Credentials(username=username, password=password, from_environment=True)
    return None


def read_credentials(prompt: bool = True) -> Credentials:
    """The administrator's credentials from the environment, else from a prompt.

    Raises ``FatalError`` when neither is possible (no variables and
    ``prompt`` false, or standard input closed).
    """
    found = credentials_from_environment()
    if found is not None:
        return found
    if os.environ.get(USERNAME_ENV) or os.environ.get(PASSWORD_ENV):
        log.warning("only one of %s and %s is set; asking for both", USERNAME_ENV, PASSWORD_ENV)
    if not prompt:
        raise FatalError(
            f"no OptHub login: set {USERNAME_ENV} and {PASSWORD_ENV}, or start the runner"
            " in a terminal to be asked for them"
        )
    click.echo(ADMIN_NOTE)
    try:
        username = str(click.prompt("Username", type=str)).strip()
        password = str(click.prompt("Password", type=str, hide_input=True))
    except click.Abort:
        raise FatalError(
            "no OptHub login: the username and password prompt was closed"
            f" (set {USERNAME_ENV} and {PASSWORD_ENV} for unattended starts)"
        ) from None
    return Credentials(username=username, password=password)


# --- Cognito and token verification -----------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """A verified login. Times are the access token's own ``iat`` / ``exp`` claims (epoch s)."""

    username: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    issued_at: float
    expires_at: float


def issuer_of(settings: ApiSettings) -> str:
    """The ``iss`` claim of the pool's tokens (the same for Cognito and for moto)."""
    return (
        f"https://cognito-idp.{settings.cognito_region}.amazonaws.com/"
        f"{settings.cognito_user_pool_id}"
    )


def jwks_url_of(settings: ApiSettings, endpoint_url: str | None = None) -> str:
    """Where the pool publishes its signing keys: Cognito's address, or the local stack's."""
    base = (endpoint_url or "").rstrip("/") or (
        f"https://cognito-idp.{settings.cognito_region}.amazonaws.com"
    )
    return f"{base}/{settings.cognito_user_pool_id}/.well-known/jwks.json"


class CognitoAuth:
    """Logs in, refreshes and verifies against one user pool and app client.

    ``endpoint_url`` points Cognito (and its JWKS) at a local stack such as a
    moto server. The requests are unsigned: ``InitiateAuth`` needs no AWS
    credentials, and the runner's AWS keys are for SQS and DynamoDB only.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        endpoint_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self.issuer = issuer_of(settings)
        self.jwks_url = jwks_url_of(settings, endpoint_url)
        self._timeout = timeout
        self._client: CognitoIdentityProviderClient | None = None
        self._jwks = jwt.PyJWKClient(
            self.jwks_url, cache_keys=True, lifespan=_JWKS_LIFESPAN, timeout=timeout
        )

    def login(self, credentials: Credentials) -> Tokens:
        """``USER_PASSWORD_AUTH``; ``LoginFailed`` for a refused username or password."""
        try:
            response = self._cognito().initiate_auth(
                ClientId=self.settings.cognito_client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": credentials.username, "PASSWORD": credentials.password},
            )
        except ClientError as exc:
            code, message = _error_of(exc)
            if code in _BAD_LOGIN_CODES:
                raise LoginFailed(
                    f"login to OptHub as {credentials.username!r} failed: {message}"
                    " (check the username and password of the competition administrator's"
                    " account)"
                ) from None
            raise self._cognito_error("login", code, message) from None
        except BotoCoreError as exc:
            raise _transport_error("log in", exc) from None
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
            response = self._cognito().initiate_auth(
                ClientId=self.settings.cognito_client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
            )
        except ClientError as exc:
            code, message = _error_of(exc)
            if code in _BAD_LOGIN_CODES:
                raise RefreshExpired(f"the OptHub login of {username} ended: {message}") from None
            raise self._cognito_error("refresh the login", code, message) from None
        except BotoCoreError as exc:
            raise _transport_error("refresh the login", exc) from None
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
        """The claims of a valid access token of this pool and client, else ``TokenInvalid``.

        Failing to fetch the JWKS is a ``TransientError``: the network, not the token.
        """
        try:
            key = self._jwks.get_signing_key_from_jwt(access_token)
            claims: dict[str, Any] = jwt.decode(
                access_token,
                key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "client_id", "token_use"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise TransientError(f"cannot fetch the signing keys from {self.jwks_url}") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid(
                f"the OptHub access token failed verification ({_describe(exc)}): check"
                " 'cognito_user_pool_id', 'cognito_client_id', 'cognito_region' and"
                " 'endpoint_url'"
            ) from None
        if claims["client_id"] != self.settings.cognito_client_id:
            raise TokenInvalid(
                "the OptHub access token was issued to another app client"
                f" ({claims['client_id']!r}, expected {self.settings.cognito_client_id!r})"
            )
        if claims["token_use"] != "access":
            raise TokenInvalid(f"expected an access token, got a {claims['token_use']!r} token")
        return claims

    def _tokens(self, username: str, access_token: str, refresh_token: str) -> Tokens:
        claims = self.verify(access_token)
        return Tokens(
            username=username,
            access_token=access_token,
            refresh_token=refresh_token,
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
        )

    def _cognito(self) -> CognitoIdentityProviderClient:
        # Made on first use so that building a CognitoAuth touches nothing.
        if self._client is None:
            self._client = boto3.client(
                "cognito-idp",
                region_name=self.settings.cognito_region,
                endpoint_url=self.endpoint_url,
                config=BotoConfig(
                    signature_version=UNSIGNED,
                    connect_timeout=self._timeout,
                    read_timeout=self._timeout,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
        return self._client

    def _cognito_error(self, action: str, code: str, message: str) -> RunnerError:
        if code in _TRANSIENT_CODES:
            return TransientError(f"Cognito could not {action} now: {code}: {message}")
        return FatalError(
            f"Cognito refused to {action}: {code}: {message} (check 'cognito_region',"
            f" 'cognito_user_pool_id' = {self.settings.cognito_user_pool_id},"
            f" 'cognito_client_id' = {self.settings.cognito_client_id})"
        )


def _transport_error(action: str, exc: BotoCoreError) -> RunnerError:
    """Network trouble passes; any other botocore error is a setup the operator must fix."""
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return TransientError(f"cannot reach Cognito to {action} ({type(exc).__name__})")
    # Only the type: botocore's messages may quote parameter values, the password among them.
    return FatalError(f"cannot {action} with Cognito ({type(exc).__name__})")


def _error_of(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    return str(error.get("Code", "Unknown")), str(error.get("Message", "")).strip()


def _describe(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "it has expired; check the machine's clock"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "it comes from another user pool"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "its signature does not match the pool's keys"
    return str(exc) or type(exc).__name__


# --- the token cache ---------------------------------------------------------------


def default_cache_path() -> Path:
    """``$XDG_CONFIG_HOME/opthub-runner/tokens.json``, by default under ``~/.config``."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative value.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / _CACHE_DIR / _CACHE_FILE


@dataclass(frozen=True)
class CachedLogin:
    """What the cache keeps of a login: enough to refresh it, nothing to log in anew."""

    username: str
    refresh_token: str = field(repr=False)


class TokenCache:
    """Refresh tokens kept between restarts, per user pool, app client and username.

    The file is created with mode 0600 (and its directory 0700) and replaced
    atomically, so that a crash never leaves half a file and no other user can
    read it even for a moment. One login per pool and client is kept: the
    latest. A file that others can read is ignored (and overwritten at the
    next login). Failing to write it is logged, not fatal: the cache only
    saves a prompt.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_cache_path()
        self._lock = threading.Lock()

    def load(self, settings: ApiSettings, username: str | None = None) -> CachedLogin | None:
        """The latest login of this pool and client (of ``username`` if given)."""
        with self._lock:
            for entry in reversed(self._read()):
                if _same_client(entry, settings) and username in (None, entry.get("username")):
                    return CachedLogin(
                        username=str(entry["username"]), refresh_token=str(entry["refresh_token"])
                    )
        return None

    def save(self, settings: ApiSettings, tokens: Tokens) -> None:
        """Keep ``tokens``' refresh token as the login of this pool and client."""
        with self._lock:
            logins = [e for e in self._read() if not _same_client(e, settings)]
            logins.append(
                {
                    "user_pool_id": settings.cognito_user_pool_id,
                    "client_id": settings.cognito_client_id,
                    "username": tokens.username,
                    "refresh_token": tokens.refresh_token,
                    "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            )
            self._write(logins)

    def forget(self, settings: ApiSettings, username: str) -> None:
        """Drop a login whose refresh token stopped working."""
        with self._lock:
            logins = self._read()
            kept = [
                e for e in logins if not (_same_client(e, settings) and e["username"] == username)
            ]
            if len(kept) != len(logins):
                self._write(kept)

    def remove(self) -> bool:
        """Delete the file (``opthub-runner logout``); True if there was one."""
        with self._lock:
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
            log.info("removed the saved OptHub login %s", self.path)
            return True

    def _read(self) -> list[dict[str, Any]]:
        try:
            mode = self.path.stat().st_mode
            if mode & 0o077:
                log.warning("ignoring %s: other users may read it (expected mode 0600)", self.path)
                return []
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring the saved OptHub login %s: %s", self.path, type(exc).__name__)
            return []
        if not isinstance(raw, Mapping) or raw.get("version") != _CACHE_VERSION:
            return []
        logins = raw.get("logins")
        return [e for e in logins if _valid_entry(e)] if isinstance(logins, list) else []

    def _write(self, logins: list[dict[str, Any]]) -> None:
        text = json.dumps({"version": _CACHE_VERSION, "logins": logins}, indent=2)
        try:
            if logins:
                _write_private(self.path, text)
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot save the OptHub login in %s: %s", self.path, exc.strerror)


def _same_client(entry: Mapping[str, Any], settings: ApiSettings) -> bool:
    return (
        entry.get("user_pool_id") == settings.cognito_user_pool_id
        and entry.get("client_id") == settings.cognito_client_id
    )


def _valid_entry(entry: Any) -> bool:
    keys = ("user_pool_id", "client_id", "username", "refresh_token")
    return isinstance(entry, Mapping) and all(isinstance(entry.get(k), str) for k in keys)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # in case the umask or the filesystem differs
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_token_cache(path: Path | None = None) -> bool:
    """Forget every saved login (``opthub-runner logout``); True if a file was removed."""
    return TokenCache(path).remove()


# --- the provider the match source asks ---------------------------------------------


class TokenProvider:
    """A valid access token for any thread, for as long as the runner lives.

    ``start()`` logs in (from the cache when its refresh token still works,
    else with ``read()``); the CLI calls it before taking any job so that a
    wrong password stops the runner at once. ``access_token()`` starts
    lazily if needed, and refreshes when less than ``margin_seconds`` (at
    most half the token's lifetime) remain. When the refresh token dies it
    logs in again with credentials from the environment, or raises
    ``FatalError`` telling the operator to restart and log in.
    """

    def __init__(
        self,
        auth: CognitoAuth,
        *,
        read: Callable[[], Credentials] = read_credentials,
        cache: TokenCache | None = None,
        margin_seconds: float = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._auth = auth
        self._read = read
        self._cache = cache
        self._margin = margin_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._tokens: Tokens | None = None
        self._credentials: Credentials | None = None

    @property
    def username(self) -> str | None:
        """Who is logged in (None before ``start``)."""
        tokens = self._tokens
        return tokens.username if tokens else None

    def start(self) -> None:
        """Log in now unless already logged in; ``LoginFailed`` for wrong credentials."""
        with self._lock:
            self._current()

    def access_token(self) -> str:
        """A verified access token with at least the margin left (or a fresh one)."""
        with self._lock:
            tokens = self._current()
            now = self._clock()
            if now < _refresh_at(tokens, self._margin):
                return tokens.access_token
            try:
                self._tokens = self._renew(tokens)
            except TransientError:
                if now < tokens.expires_at:
                    log.warning(
                        "cannot refresh the OptHub login yet; the current token still works"
                    )
                    return tokens.access_token
                raise
            return self._tokens.access_token

    def logout(self) -> None:
        """Forget the login in memory and on disk."""
        with self._lock:
            self._tokens = None
            self._credentials = None
            if self._cache is not None:
                self._cache.remove()

    def _current(self) -> Tokens:
        if self._tokens is None:
            self._tokens = self._from_cache() or self._login(self._read())
        return self._tokens

    def _from_cache(self) -> Tokens | None:
        if self._cache is None:
            return None
        from_env = credentials_from_environment()
        settings = self._auth.settings
        cached = self._cache.load(settings, from_env.username if from_env else None)
        if cached is None:
            return None
        try:
            tokens = self._auth.refresh(cached.username, cached.refresh_token)
        except RefreshExpired:
            log.info("the saved OptHub login of %s has ended; logging in again", cached.username)
            self._cache.forget(settings, cached.username)
            return None
        self._credentials = from_env
        log.info("resumed the saved OptHub login of %s", cached.username)
        return tokens

    def _login(self, credentials: Credentials) -> Tokens:
        tokens = self._auth.login(credentials)
        # Only credentials from the environment are kept for a later login.
        self._credentials = credentials if credentials.from_environment else None
        if self._cache is not None:
            self._cache.save(self._auth.settings, tokens)
        return tokens

    def _renew(self, tokens: Tokens) -> Tokens:
        try:
            renewed = self._auth.refresh(tokens.username, tokens.refresh_token)
        except RefreshExpired:
            if self._cache is not None:
                self._cache.forget(self._auth.settings, tokens.username)
            if self._credentials is None:
                raise FatalError(
                    f"the OptHub login of {tokens.username} has ended and cannot be renewed:"
                    f" {_RELOGIN_ADVICE}"
                ) from None
            log.warning("the OptHub login of %s ended; logging in again", tokens.username)
            return self._login(self._credentials)
        if self._cache is not None and renewed.refresh_token != tokens.refresh_token:
            self._cache.save(self._auth.settings, renewed)
        return renewed


def _refresh_at(tokens: Tokens, margin: float) -> float:
    """When to refresh: ``margin`` before expiry, but never before half the lifetime."""
    lifetime = max(tokens.expires_at - tokens.issued_at, 0.0)
    return tokens.expires_at - min(margin, lifetime / 2)


def login_for_runner(
    settings: ApiSettings,
    *,
    endpoint_url: str | None = None,
    interactive: bool = True,
    read: Callable[[], Credentials] | None = None,
    cache: TokenCache | None = None,
    margin_seconds: float = DEFAULT_REFRESH_MARGIN,
) -> TokenProvider:
    """Log the administrator in now, before any job is taken, and keep the login alive.

    ``interactive`` false forbids the prompt (credentials must come from the
    environment or the cache). ``read`` replaces the credentials reader.
    Raises ``LoginFailed`` (wrong username or password), ``FatalError`` or
    ``TransientError`` (Cognito unreachable).
    """
    provider = TokenProvider(
        CognitoAuth(settings, endpoint_url=endpoint_url),
        read=read or functools.partial(read_credentials, prompt=interactive),
        cache=cache if cache is not None else TokenCache(),
        margin_seconds=margin_seconds,
    )
    provider.start()
    return provider
