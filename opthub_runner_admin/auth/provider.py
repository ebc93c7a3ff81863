"""The token provider: a valid access token for any thread, for weeks.

It logs in (from the saved login when its refresh token still works, else
with the administrator's credentials), refreshes before the access token
expires, logs in again with credentials from the environment when the
refresh token dies, and otherwise stops the runner with one line.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from ..aws.clients import AwsSession
from ..errors import FatalError, TransientError
from .cognito import DEFAULT_REFRESH_MARGIN, CognitoAuth, RefreshExpired, Tokens
from .credentials import Credentials, credentials_from_environment, read_credentials
from .endpoints import ApiSettings
from .token_file import TokenCache

log = logging.getLogger(__name__)

_RELOGIN_ADVICE = "restart the runner and log in with the competition administrator's account"


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
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        self._auth = auth
        self._read = read
        self._cache = cache
        self._margin = margin_seconds
        self._clock = clock
        self._on_refresh = on_refresh
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
        if self._on_refresh is not None:
            self._on_refresh()
        return renewed


def _refresh_at(tokens: Tokens, margin: float) -> float:
    """When to refresh: ``margin`` before expiry, but never before half the lifetime."""
    lifetime = max(tokens.expires_at - tokens.issued_at, 0.0)
    return tokens.expires_at - min(margin, lifetime / 2)


def login_for_runner(
    settings: ApiSettings,
    *,
    endpoint_url: str | None = None,
    prompt: Callable[[], Credentials] | None = None,
    read: Callable[[], Credentials] | None = None,
    cache: TokenCache | None = None,
    margin_seconds: float = DEFAULT_REFRESH_MARGIN,
    session: AwsSession | None = None,
    on_refresh: Callable[[], None] | None = None,
) -> TokenProvider:
    """Log the administrator in now, before any job is taken, and keep the login alive.

    ``prompt`` asks for the credentials when the environment lacks them
    (None: they must come from the environment or the cache). ``read``
    replaces the credentials reader.
    ``session`` is the runner's shared boto3 session.
    Raises ``LoginFailed`` (wrong username or password), ``FatalError`` or
    ``TransientError`` (Cognito unreachable).
    """
    provider = TokenProvider(
        CognitoAuth(settings, endpoint_url=endpoint_url, session=session),
        read=read or functools.partial(read_credentials, prompt),
        cache=cache if cache is not None else TokenCache(),
        margin_seconds=margin_seconds,
        on_refresh=on_refresh,
    )
    provider.start()
    return provider
