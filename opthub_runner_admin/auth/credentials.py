"""The administrator's username and password: from the environment, else from a prompt.

Unattended starts (systemd, a script) set ``OPTHUB_USERNAME`` and
``OPTHUB_PASSWORD``; a start in a terminal asks through the prompt the caller
gives (the CLI's, ``cli.prompt_credentials``), so that auth knows no terminal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import FatalError

log = logging.getLogger(__name__)

USERNAME_ENV = "OPTHUB_USERNAME"
PASSWORD_ENV = "OPTHUB_PASSWORD"


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


def read_credentials(prompt: Callable[[], Credentials] | None = None) -> Credentials:
    """The administrator's credentials from the environment, else from ``prompt``.

    Raises ``FatalError`` when neither is possible (no variables and no
    prompt); ``prompt`` raises its own ``FatalError`` when it cannot ask.
    """
    found = credentials_from_environment()
    if found is not None:
        return found
    if os.environ.get(USERNAME_ENV) or os.environ.get(PASSWORD_ENV):
        log.warning("only one of %s and %s is set; asking for both", USERNAME_ENV, PASSWORD_ENV)
    if prompt is None:
        raise FatalError(
            f"no OptHub login: set {USERNAME_ENV} and {PASSWORD_ENV}, or start the runner"
            " in a terminal to be asked for them"
        )
    return prompt()
