"""The token provider: a valid access token for any thread, for weeks.

It logs in (from the saved login when its refresh token still works, else
with the administrator's credentials), refreshes before the access token
expires, and logs in again with credentials from the environment when the
refresh token dies. Without them the runner does not stop: the login is
*needed* (``LoginNeeded`` for whoever asks for a token once the current one
is spent), the listener is told (the worker takes no new job meanwhile), and
the password is asked again where someone can type it (``ask_again``, the
CLI's terminal prompt) or a login saved since by another runner of this user
is taken up; then the runner goes on without a restart.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from ..aws.clients import AwsSession
from ..errors import TransientError
from .asking import PasswordAsker
from .cognito import DEFAULT_REFRESH_MARGIN, CognitoAuth, RefreshExpired, Tokens
from .credentials import (
    PASSWORD_ENV,
    USERNAME_ENV,
    Credentials,
    credentials_from_environment,
    read_credentials,
)
from .endpoints import ApiSettings
from .login_state import DEFAULT_REFRESH_TOKEN_DAYS, LoginListener, LoginState, login_state
from .token_file import TokenCache

log = logging.getLogger(__name__)

#: Seconds between two looks at the saved login while a new login is needed.
CACHE_LOOK_SECONDS = 30.0
#: Seconds of an ended login's last access token not used (it may be refused by then).
SPENT_MARGIN = 60.0
_UNATTENDED_ADVICE = (
    f"start the runner again in a terminal to type the password, or with {USERNAME_ENV} and"
    f" {PASSWORD_ENV} set (it then logs in again by itself)"
)
_TERMINAL_ADVICE = "type the password at the runner's terminal"


class LoginNeeded(TransientError):
    """The login ended and waits for the administrator; a job needing the API goes back."""


class TokenProvider:
    """A valid access token for any thread, for as long as the runner lives.

    ``start()`` logs in (from the cache when its refresh token still works,
    else with ``read()``); the CLI calls it before taking any job so that a
    wrong password stops the runner at once. ``access_token()`` starts
    lazily if needed, and refreshes when less than ``margin_seconds`` (at
    most half the token's lifetime) remain. When the refresh token dies it
    logs in again with credentials from the environment; else the login is
    needed (``state.needed``, told to ``listener``): the last access token
    serves while it lasts, then ``LoginNeeded``, until ``ask_again`` (a
    thread of its own) or a login saved by another runner brings a new one.
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
        ask_again: Callable[[str], Credentials] | None = None,
        listener: LoginListener | None = None,
        validity_seconds: float = DEFAULT_REFRESH_TOKEN_DAYS * 86400,
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
        self._listener = listener
        self._validity = validity_seconds
        self._logged_in_at: float | None = None
        #: Why a new login is needed ("" while the login works).
        self._needed = ""
        self._dead_refresh_token = ""
        self._next_cache_look = 0.0
        self._asker = (
            None
            if ask_again is None
            else PasswordAsker(
                ask=ask_again,
                login=auth.login,
                still_needed=self._still_needed,
                logged_in=self._logged_in_again,
                advice=_UNATTENDED_ADVICE,
            )
        )

    @property
    def username(self) -> str | None:
        """Who is logged in (None before ``start``)."""
        tokens = self._tokens
        return tokens.username if tokens else None

    @property
    def state(self) -> LoginState | None:
        """The login as people see it (None before ``start``)."""
        with self._lock:
            tokens = self._tokens
            if tokens is None:
                return None
            return login_state(tokens.username, self._logged_in_at, self._validity, self._needed)

    def start(self) -> None:
        """Log in now unless already logged in; ``LoginFailed`` for wrong credentials."""
        with self._lock:
            self._current()

    def access_token(self) -> str:
        """A verified access token with at least the margin left (or a fresh one)."""
        with self._lock:
            tokens = self._current()
            now = self._clock()
            if self._needed:
                return self._while_needed(tokens, now)
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
            if self._needed:
                return self._while_needed(tokens, now)
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
        self._logged_in_at = cached.logged_in_at
        log.info("resumed the saved OptHub login of %s", cached.username)
        self._tell(tokens)
        return tokens

    def _login(self, credentials: Credentials) -> Tokens:
        tokens = self._auth.login(credentials)
        # Only credentials from the environment are kept for a later login.
        self._credentials = credentials if credentials.from_environment else None
        self._logged_in_at = self._clock()
        if self._cache is not None:
            self._cache.save(self._auth.settings, tokens, self._logged_in_at)
        self._tell(tokens)
        return tokens

    def _tell(self, tokens: Tokens) -> None:
        if self._listener is not None:
            self._listener(
                login_state(tokens.username, self._logged_in_at, self._validity, self._needed)
            )

    # --- a login that ended ------------------------------------------------------

    def _need(self, tokens: Tokens, reason: str) -> None:
        """The refresh token died and no credentials are at hand (lock held): say so once."""
        advice = _TERMINAL_ADVICE if self._asker is not None else _UNATTENDED_ADVICE
        self._needed = f"the OptHub login of {tokens.username} has ended ({reason}): {advice}"
        self._dead_refresh_token = tokens.refresh_token
        if self._listener is None:
            log.error("%s", self._needed)
        self._tell(tokens)  # the listener says it (the runner's holds: once, in the log)
        if self._asker is not None:
            self._asker.start(tokens.username)

    def _while_needed(self, tokens: Tokens, now: float) -> str:
        """The last access token while it lasts, a login saved since, else ``LoginNeeded``."""
        if now >= self._next_cache_look:
            self._next_cache_look = now + CACHE_LOOK_SECONDS
            saved = self._saved_since(tokens.username)
            if saved is not None:
                return saved.access_token
        if now < tokens.expires_at - SPENT_MARGIN:
            return tokens.access_token
        raise LoginNeeded(self._needed)

    def _saved_since(self, username: str) -> Tokens | None:
        """A login of ``username`` saved by another runner of this user since ours ended."""
        if self._cache is None:
            return None
        cached = self._cache.load(self._auth.settings, username)
        if cached is None or cached.refresh_token == self._dead_refresh_token:
            return None
        try:
            tokens = self._auth.refresh(cached.username, cached.refresh_token)
        except (RefreshExpired, TransientError):
            return None
        log.info("took up the OptHub login of %s saved on this machine since", username)
        self._restored(tokens, cached.logged_in_at, save=False)
        return tokens

    def _logged_in_again(self, tokens: Tokens) -> None:
        with self._lock:
            self._restored(tokens, self._clock(), save=True)

    def _still_needed(self) -> bool:
        with self._lock:
            return bool(self._needed)

    def _restored(self, tokens: Tokens, logged_in_at: float | None, *, save: bool) -> None:
        """A new login works (lock held): the runner takes jobs again."""
        self._tokens = tokens
        self._needed = ""
        self._logged_in_at = logged_in_at
        if save and self._cache is not None:
            self._cache.save(self._auth.settings, tokens, logged_in_at)
        log.warning("logged in to OptHub again as %s; taking new jobs again", tokens.username)
        self._tell(tokens)

    def _renew(self, tokens: Tokens) -> Tokens:
        try:
            renewed = self._auth.refresh(tokens.username, tokens.refresh_token)
        except RefreshExpired as exc:
            if self._cache is not None:
                self._cache.forget(self._auth.settings, tokens.username)
            if self._credentials is None:
                self._need(tokens, _reason(exc))
                return tokens
            log.warning("the OptHub login of %s ended; logging in again", tokens.username)
            return self._login(self._credentials)
        if self._cache is not None and renewed.refresh_token != tokens.refresh_token:
            self._cache.save(self._auth.settings, renewed, self._logged_in_at)
        if self._on_refresh is not None:
            self._on_refresh()
        return renewed


def _reason(exc: RefreshExpired) -> str:
    """Cognito's own words ("Refresh Token has expired"), after the runner's prefix."""
    return str(exc).partition(": ")[2] or str(exc)


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
    ask_again: Callable[[str], Credentials] | None = None,
    listener: LoginListener | None = None,
    validity_seconds: float = DEFAULT_REFRESH_TOKEN_DAYS * 86400,
) -> TokenProvider:
    """Log the administrator in now, before any job is taken, and keep the login alive.

    ``prompt`` asks for the credentials when the environment lacks them
    (None: they must come from the environment or the cache). ``read``
    replaces the credentials reader.
    ``session`` is the runner's shared boto3 session. ``ask_again`` asks the
    password of the named account when the login ends (None: nobody can type
    it); ``listener`` hears every change of the login.
    Raises ``LoginFailed`` (wrong username or password), ``FatalError`` or
    ``TransientError`` (Cognito unreachable).
    """
    provider = TokenProvider(
        CognitoAuth(settings, endpoint_url=endpoint_url, session=session),
        read=read or functools.partial(read_credentials, prompt),
        cache=cache if cache is not None else TokenCache(),
        margin_seconds=margin_seconds,
        on_refresh=on_refresh,
        ask_again=ask_again,
        listener=listener,
        validity_seconds=validity_seconds,
    )
    provider.start()
    return provider
