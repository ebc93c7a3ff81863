"""Verification of the access tokens Cognito hands out, against the pool's JWKS.

RS256 signature, issuer, ``client_id`` and ``token_use`` are checked by
PyJWT and here; the times (``iat``, ``nbf``, ``exp``) are checked here
against an injectable clock with a leeway, because a host clock a second or
two behind Cognito's is common (no NTP on a fresh machine) and must not stop
the runner, while a clock minutes off must be named as the cause instead of
blaming the pool, client and region.

Issuer: Cognito signs access tokens with
``iss = https://cognito-idp.<region>.amazonaws.com/<pool id>``. moto (the
local stack of the tests and the demo) writes exactly the same issuer into
its tokens whatever endpoint it is reached at, so the expected issuer never
depends on ``endpoint_url``; only the JWKS address does
(``<endpoint_url>/<pool id>/.well-known/jwks.json``, which moto serves).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from ..errors import FatalError, SetupError, TransientError
from .endpoints import ApiSettings

#: Seconds this machine's clock may disagree with Cognito's before a token is refused.
CLOCK_LEEWAY = 60.0
#: Seconds one JWKS request may take.
DEFAULT_TIMEOUT = 10.0
#: How long the JWKS is reused before it is fetched again (Cognito rotates keys rarely;
#: an unknown key id makes PyJWT fetch it at once anyway).
_JWKS_LIFESPAN = 3600.0
_CLOCK_ADVICE = (
    "set this machine's clock right (for example enable NTP: sudo timedatectl set-ntp true)"
    " and start the runner again"
)


class TokenInvalid(FatalError):
    """A token from Cognito failed verification: wrong pool, client or endpoint, or a forgery."""


class ClockSkewed(TokenInvalid):
    """The token is fine but this machine's clock is more than the leeway off Cognito's.

    Not a ``SetupError``: at boot the clock may be set by NTP a little later,
    and a retried login with the right password locks nothing.
    """


class PoolMismatch(TokenInvalid, SetupError):
    """Cognito's token is not of the configured pool and client: every new login fails alike."""


class UnknownUserPool(SetupError):
    """The user pool publishes no signing keys: ``cognito_user_pool_id`` or the region is wrong."""


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


class TokenVerifier:
    """Checks access tokens of one user pool and app client; fetches the JWKS lazily."""

    def __init__(
        self,
        *,
        settings: ApiSettings,
        endpoint_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        leeway: float = CLOCK_LEEWAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.issuer = issuer_of(settings)
        self.jwks_url = jwks_url_of(settings, endpoint_url)
        self._leeway = leeway
        self._clock = clock
        self._jwks = jwt.PyJWKClient(
            self.jwks_url, cache_keys=True, lifespan=_JWKS_LIFESPAN, timeout=timeout
        )

    def verify(self, access_token: str) -> dict[str, Any]:
        """The claims of a valid access token of this pool and client, else ``TokenInvalid``.

        ``ClockSkewed`` (a ``TokenInvalid``) when only the times are off by
        more than the leeway. Failing to fetch the JWKS is a
        ``TransientError``: the network, not the token; unless Cognito
        answers 4xx (``UnknownUserPool``: no such pool).
        """
        try:
            key = self._jwks.get_signing_key_from_jwt(access_token)
            claims: dict[str, Any] = jwt.decode(
                access_token,
                key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                # Times are checked below against the injected clock, with the leeway.
                options={
                    "require": ["exp", "iat", "iss", "client_id", "token_use"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWKClientConnectionError as exc:
            status = _http_status(exc)
            if status is not None and 400 <= status < 500:
                raise UnknownUserPool(
                    f"user pool {self.settings.cognito_user_pool_id!r} has no signing keys at"
                    f" {self.jwks_url} (HTTP {status}): check 'cognito_user_pool_id' and"
                    " 'cognito_region' (or leave them out to use OptHub's)"
                ) from None
            raise TransientError(f"cannot fetch the signing keys from {self.jwks_url}") from exc
        except jwt.PyJWTError as exc:
            raise PoolMismatch(
                f"the OptHub access token failed verification ({_describe(exc)}): check"
                " 'cognito_user_pool_id', 'cognito_client_id', 'cognito_region' and"
                " 'endpoint_url'"
            ) from None
        self._check_times(claims)
        if claims["client_id"] != self.settings.cognito_client_id:
            raise PoolMismatch(
                "the OptHub access token was issued to another app client"
                f" ({claims['client_id']!r}, expected {self.settings.cognito_client_id!r})"
            )
        if claims["token_use"] != "access":
            raise PoolMismatch(f"expected an access token, got a {claims['token_use']!r} token")
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        """Tokens are verified as they arrive: a new token in the past or future is the clock."""
        now = self._clock()
        issued = _number(claims, "iat")
        not_before = _number(claims, "nbf") if "nbf" in claims else issued
        expires = _number(claims, "exp")
        ahead_of_us = max(issued, not_before) - now
        if ahead_of_us > self._leeway:
            raise ClockSkewed(
                f"this machine's clock is {ahead_of_us:.0f} s behind Cognito's (a new OptHub"
                f" token is not valid yet by it; {self._leeway:.0f} s are tolerated):"
                f" {_CLOCK_ADVICE}"
            )
        behind_us = now - expires
        if behind_us > self._leeway:
            raise ClockSkewed(
                f"this machine's clock is at least {behind_us:.0f} s ahead of Cognito's (a new"
                f" OptHub token has already expired by it; {self._leeway:.0f} s are tolerated):"
                f" {_CLOCK_ADVICE}"
            )


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenInvalid(f"the OptHub access token's '{name}' is not a time ({value!r})")
    return float(value)


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status behind PyJWT's fetch error (it wraps urllib's), if the server answered."""
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "code", None)
    return code if isinstance(code, int) else None


def _describe(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.InvalidIssuerError):
        return "it comes from another user pool"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "its signature does not match the pool's keys"
    return str(exc) or type(exc).__name__
