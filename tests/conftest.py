"""Shared fixtures, and the tier markers every test gets from the fixtures it uses.

Each support module owns one real service (Docker, moto, GraphQL). A test
whose fixtures need a Docker daemon is marked ``docker``, one whose fixtures
need an AWS emulator ``emulator`` (``tests/support/tiers.py`` says which
fixtures those are), so that ``pytest -m "not docker and not emulator"`` runs
on a machine with neither.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.tiers import TIERS, tiers_of

pytest_plugins = [
    "tests.support.docker_fixtures",
    "tests.support.aws_fixtures",
    "tests.support.api_fixtures",
    "tests.support.cognito_standin",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in tiers_of(item):
            item.add_marker(marker)


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """Fail a test that sets up a tier's fixture without carrying the tier's marker.

    That test reached the fixture in a way the markers did not see (a
    ``request.getfixturevalue`` its parameters do not name), so a run that
    leaves the tier out would have run it anyway.
    """
    item = getattr(request, "_pyfuncitem", None)  # the test, whatever the fixture's scope
    if item is None:
        return
    for marker, fixtures in TIERS.items():
        if fixturedef.argname in fixtures and item.get_closest_marker(marker) is None:
            pytest.fail(
                f"{item.nodeid} sets up {fixturedef.argname} but is not marked {marker}:"
                " name the fixture in a parameter of the test or of its fixtures, or with"
                " tests.support.tiers.using where a fixture asks for it by name",
                pytrace=False,
            )
