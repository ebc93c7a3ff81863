"""The administrator's username and password: from the environment, else from a prompt.

Unattended starts (systemd, a script) set ``OPTHUB_USERNAME`` and
``OPTHUB_PASSWORD``; a start in a terminal asks, with the password hidden,
after the note the published README shows.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import click

from ..errors import SetupError

log = logging.getLogger(__name__)

USERNAME_ENV = "OPTHUB_USERNAME"
PASSWORD_ENV = "OPTHUB_PASSWORD"
#: Printed before the prompt, word for word as the published README shows it.
ADMIN_NOTE = "Note: Make sure to authenticate using the competition administrator's account."


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

    Raises ``SetupError`` when no variable holds them and no prompt can
    ask (``prompt`` false, or standard input closed: under systemd), and for
    an empty password, which is never tried.
    """
    found = credentials_from_environment()
    if found is not None:
        return found
    if os.environ.get(USERNAME_ENV) or os.environ.get(PASSWORD_ENV):
        log.warning("only one of %s and %s is set; asking for both", USERNAME_ENV, PASSWORD_ENV)
    if not prompt:
        raise _no_login("")
    click.echo(ADMIN_NOTE)
    try:
        username = str(click.prompt("Username", type=str)).strip()
        password = str(click.prompt("Password", type=str, hide_input=True))
    except click.Abort:
        raise _no_login(" (the prompt was closed)") from None
    if not password:
        raise SetupError("no OptHub login: the password is empty (nothing was tried)")
    return Credentials(username=username, password=password)


def _no_login(how: str) -> SetupError:
    """Unattended (systemd): a restart reads the same environment, so it cannot help (exit 78).

    An empty password is never tried: a retried wrong login can lock the account.
    """
    missing = PASSWORD_ENV if os.environ.get(USERNAME_ENV, "").strip() else USERNAME_ENV
    return SetupError(
        f"no OptHub login{how}: {missing} is empty; set {USERNAME_ENV} and {PASSWORD_ENV}"
        " (under systemd in /etc/opthub-runner/credentials.env), or start the runner in a"
        " terminal to be asked for them"
    )
