"""pytest fixtures for the local AWS stack: a real moto server over HTTP, and MiniStack.

- ``moto_server`` (session): one ``MotoServer`` for the whole run. Never stop
  it in a test; use ``moto_server_factory`` for outages.
- ``aws`` (function): an ``AwsStack`` on that server with a fresh, uniquely
  named table and evaluator/scorer queues, removed after the test.
- ``ministack_server`` / ``ministack_aws``: the same on MiniStack, a second
  emulator written independently of moto (``platform_side/emulators.py``).
- ``@on_each_emulator``: runs a test that takes ``aws`` once per emulator, with
  the emulator's name in its id.
- ``moto_server_factory`` (function): starts private servers (optionally with
  extra environment, such as ``INITIAL_NO_AUTH_ACTION_COUNT=0`` to make moto
  check credentials) that a test may stop and start at will.
- ``moto_of_its_own``: for a test whose command under test starts a moto
  server itself (the demo, the soak), so that the test is marked ``emulator``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping

import pytest

from opthub_runner_admin.platform_side.emulators import (
    EMULATORS,
    LocalServer,
    MiniStackServer,
    MotoServer,
    ministack_python,
)
from opthub_runner_admin.platform_side.stack import AwsStack, stack_on

#: Starts a private moto server; keyword arguments go to ``MotoServer``.
MotoServerFactory = Callable[..., MotoServer]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the whole test run."""
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def ministack_server() -> Iterator[MiniStackServer]:
    """One MiniStack server for the whole run (skipped locally, failed in CI, when absent)."""
    if not ministack_python().exists():
        reason = f"MiniStack is not installed at {ministack_python()}: run scripts/setup.sh"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with MiniStackServer() as server:
        yield server


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> Iterator[AwsStack]:
    """A fresh table and evaluator/scorer queues on the session's moto server.

    A test marked ``@on_each_emulator`` gets one on each emulator in turn instead;
    ``OPTHUB_TEST_EMULATOR=ministack`` puts every other test's stack on MiniStack.
    """
    name = getattr(request, "param", os.environ.get("OPTHUB_TEST_EMULATOR", "moto"))
    server: LocalServer = request.getfixturevalue(f"{name}_server")
    with stack_on(server) as stack:
        yield stack


#: Runs the test once per emulator (moto, then MiniStack), its ``aws`` stack on each.
on_each_emulator = pytest.mark.parametrize("aws", EMULATORS, indirect=True)


@pytest.fixture
def ministack_aws(ministack_server: MiniStackServer) -> Iterator[AwsStack]:
    """A fresh table and evaluator/scorer queues on the session's MiniStack server."""
    with stack_on(ministack_server) as stack:
        yield stack


@pytest.fixture
def moto_server_factory() -> Iterator[MotoServerFactory]:
    """Start private moto servers that the test may stop; all are stopped afterwards."""
    servers: list[MotoServer] = []

    def start(*, env: Mapping[str, str] | None = None) -> MotoServer:
        server = MotoServer(env=env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def moto_of_its_own() -> None:
    """The test runs a command that starts a moto server of its own (the demo, the soak).

    It gives the test nothing: asking for it puts the need among the test's
    fixtures, where the ``emulator`` marker is read from (``tests/support/tiers.py``).
    """
