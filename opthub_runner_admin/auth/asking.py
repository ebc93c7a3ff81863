"""Asking the administrator's password again, in a thread, while the runner goes on.

When the login ends and someone can type the password (the CLI's terminal
prompt), the provider starts one ``PasswordAsker``: it asks the named
account's password, logs in, and asks again after a wrong password or a
Cognito that cannot be reached, until a login works, the asking fails (the
terminal closed) or the login is no longer needed (one saved since was taken
up). The password is not kept once the login is made.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import RunnerError, TransientError
from .cognito import LoginFailed, Tokens
from .credentials import Credentials

log = logging.getLogger(__name__)


class PasswordAsker:
    """One asking thread; ``start`` is a no-op while one runs."""

    def __init__(
        self,
        *,
        ask: Callable[[str], Credentials],
        login: Callable[[Credentials], Tokens],
        still_needed: Callable[[], bool],
        logged_in: Callable[[Tokens], None],
        advice: str,
    ) -> None:
        self._ask = ask
        self._login = login
        self._still_needed = still_needed
        self._logged_in = logged_in
        self._advice = advice
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, username: str) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, args=(username,), name="login-again", daemon=True
            )
            self._thread.start()

    def _run(self, username: str) -> None:
        try:
            while self._still_needed():
                try:
                    credentials = self._ask(username)
                except RunnerError as exc:
                    log.error("cannot ask for the password again (%s): %s", exc, self._advice)
                    return
                try:
                    tokens = self._login(credentials)
                except (LoginFailed, TransientError) as exc:
                    log.error("%s; asking again", exc)
                    continue
                self._logged_in(tokens)
                return
        finally:
            with self._lock:
                self._thread = None
