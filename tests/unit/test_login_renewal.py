"""The login's end mid-run, against a real HTTP Cognito of short tokens (``cognito_standin``).

The refresh token ends while the runner holds a login: with nobody to type
the password the provider waits (``LoginNeeded``, the listener told once)
and takes up a login saved since; with a terminal it asks the named account's
password in a thread and goes on; with the credentials in the environment it
logs in again by itself. The password's time survives restarts in the saved
login, for the estimate of the login's end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from opthub_runner_admin.auth.cognito import CognitoAuth
from opthub_runner_admin.auth.credentials import (
    PASSWORD_ENV,
    USERNAME_ENV,
    Credentials,
    read_credentials,
)
from opthub_runner_admin.auth.login_state import LoginState
from opthub_runner_admin.auth.provider import CACHE_LOOK_SECONDS, LoginNeeded, TokenProvider
from opthub_runner_admin.auth.token_file import TokenCache
from opthub_runner_admin.platform_side.cognito_standin import CognitoStandIn
from opthub_runner_admin.platform_side.runners import wait_for

#: Past the refresh point of a stand-in token (20 s: refreshed after half of it).
PAST_REFRESH = 15.0
DAY = 86400.0


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(USERNAME_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Asked:
    """``ask_again``: records whom it was asked for, answers what the test types."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.typed = threading.Event()

    def __call__(self, username: str) -> Credentials:
        self.asked.append(username)
        self.typed.wait(10)
        return Credentials(username=username, password=self.answers.pop(0))


def provider_for(
    stand_in: CognitoStandIn,
    cache: TokenCache,
    clock: Clock,
    heard: list[LoginState],
    *,
    read: Callable[[], Credentials] | None = None,
    ask_again: Callable[[str], Credentials] | None = None,
) -> TokenProvider:
    auth = CognitoAuth(stand_in.settings(), endpoint_url=stand_in.endpoint_url)
    typed = Credentials(stand_in.username, stand_in.password)
    return TokenProvider(
        auth,
        read=read or (lambda: typed),
        cache=cache,
        clock=clock,
        listener=heard.append,
        validity_seconds=30 * DAY,
        ask_again=ask_again,
    )


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "tokens.json")


def test_an_ended_login_asks_the_password_again_and_goes_on(
    cognito_stand_in: CognitoStandIn, cache: TokenCache
) -> None:
    clock, heard = Clock(), list[LoginState]()
    asked = Asked("wrong password", cognito_stand_in.password)
    provider = provider_for(cognito_stand_in, cache, clock, heard, ask_again=asked)
    first = provider.access_token()
    assert heard[-1].needed == "" and heard[-1].logged_in_at is not None

    cognito_stand_in.end_refresh_tokens()
    clock.offset = PAST_REFRESH
    with pytest.raises(LoginNeeded) as caught:
        provider.access_token()
    assert "type the password at the runner's terminal" in str(caught.value)
    assert heard[-1].needed == str(caught.value)
    assert heard[-1].remaining(clock()) == 0.0

    asked.typed.set()  # a wrong password first: asked again, then the right one
    wait_for(lambda: not heard[-1].needed, 20, "the new login")
    assert asked.asked == [cognito_stand_in.username, cognito_stand_in.username]
    second = provider.access_token()
    assert second != first
    assert cognito_stand_in.counts.logins == 2
    assert cognito_stand_in.counts.refused_refreshes == 1  # the dead token was tried once
    state = provider.state
    assert state is not None and state.logged_in_at is not None
    assert heard[0].logged_in_at is not None and state.logged_in_at >= heard[0].logged_in_at
    saved = cache.load(cognito_stand_in.settings())
    assert saved is not None and saved.logged_in_at == state.logged_in_at


def test_without_a_terminal_the_login_waits_and_takes_up_one_saved_since(
    cognito_stand_in: CognitoStandIn, cache: TokenCache
) -> None:
    clock, heard = Clock(), list[LoginState]()
    provider = provider_for(cognito_stand_in, cache, clock, heard)
    provider.access_token()
    cognito_stand_in.end_refresh_tokens()
    clock.offset = PAST_REFRESH
    for _ in range(3):
        with pytest.raises(LoginNeeded) as caught:
            provider.access_token()
    assert "start the runner again in a terminal" in str(caught.value)
    assert [bool(s.needed) for s in heard] == [False, True]  # told once
    assert cognito_stand_in.counts.refused_refreshes == 1  # not tried again and again

    # Another runner of this user (or `opthub-runner scorer` in a terminal) logs in.
    other = provider_for(cognito_stand_in, cache, Clock(), [])
    other.access_token()
    clock.offset += CACHE_LOOK_SECONDS + 1
    token = provider.access_token()

    assert token and heard[-1].needed == ""
    assert cognito_stand_in.counts.logins == 2


def test_credentials_in_the_environment_log_in_again_by_themselves(
    cognito_stand_in: CognitoStandIn, cache: TokenCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(USERNAME_ENV, cognito_stand_in.username)
    monkeypatch.setenv(PASSWORD_ENV, cognito_stand_in.password)
    clock, heard = Clock(), list[LoginState]()
    provider = provider_for(cognito_stand_in, cache, clock, heard, read=read_credentials)
    first = provider.access_token()
    cognito_stand_in.end_refresh_tokens()
    clock.offset = PAST_REFRESH

    second = provider.access_token()

    assert second != first
    assert cognito_stand_in.counts.logins == 2
    assert all(not state.needed for state in heard)


def test_the_password_time_survives_a_restart(
    cognito_stand_in: CognitoStandIn, cache: TokenCache
) -> None:
    clock, heard = Clock(), list[LoginState]()
    provider_for(cognito_stand_in, cache, clock, heard).start()
    given = heard[-1].logged_in_at
    assert given is not None

    restarted: list[LoginState] = []
    later = Clock()
    later.offset = 2 * DAY
    resumed = provider_for(cognito_stand_in, cache, later, restarted, read=_no_prompt)
    resumed.start()

    assert restarted[-1].logged_in_at == given  # not the restart's time
    age = restarted[-1].age(later())
    remaining = restarted[-1].remaining(later())
    assert age is not None and remaining is not None
    assert 2 * DAY <= age < 2 * DAY + 60
    assert 28 * DAY - 60 < remaining <= 28 * DAY
    assert cognito_stand_in.counts.logins == 1  # resumed, not logged in again


def _no_prompt() -> Credentials:
    raise AssertionError("the saved login should have been resumed")
