"""What the runner shows of its login: who, since when, until about when, and whether it waits.

Cognito says nothing of how long a refresh token has left; the estimate is the
time the password was last given plus the pool's refresh-token validity
(``refresh_token_validity_days``, 30 days by Cognito's default), so that an
alert can warn days before the login ends. The time the password was given is
kept in the saved login, so that the estimate survives restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Cognito's default refresh-token validity (a pool may set 60 minutes to 10 years).
DEFAULT_REFRESH_TOKEN_DAYS = 30.0


@dataclass(frozen=True)
class LoginState:
    """The administrator's login as the status page, the metrics and the log show it."""

    username: str
    #: Unix time the password was last given (None: unknown, a login saved by an older runner).
    logged_in_at: float | None
    #: Unix time the refresh token is estimated to end (None: unknown).
    ends_at: float | None
    #: Why a new login is needed ("" while the login works).
    needed: str = ""

    def age(self, now: float) -> float | None:
        """Seconds since the password was last given."""
        return None if self.logged_in_at is None else max(0.0, now - self.logged_in_at)

    def remaining(self, now: float) -> float | None:
        """Estimated seconds until the refresh token ends (0 once it has)."""
        if self.needed:
            return 0.0
        return None if self.ends_at is None else max(0.0, self.ends_at - now)


#: Told every change of the login (logged in, login needed, logged in again).
LoginListener = Callable[[LoginState], None]


def login_state(
    username: str, logged_in_at: float | None, validity_seconds: float, needed: str = ""
) -> LoginState:
    """The state of a login whose password was given at ``logged_in_at``."""
    ends_at = None if logged_in_at is None else logged_in_at + validity_seconds
    return LoginState(username=username, logged_in_at=logged_in_at, ends_at=ends_at, needed=needed)
