"""Which tier a test belongs to, read from the fixtures it uses.

``tests/conftest.py`` marks every collected test ``docker`` when one of its
fixtures needs a Docker daemon and ``emulator`` when one needs an AWS
emulator (moto or MiniStack), so that ``-m "not docker and not emulator"``
selects the tests that run on a machine with neither. pytest's
``item.fixturenames`` already holds every fixture a test uses, the fixtures
of its fixtures included; the one way past it is ``request.getfixturevalue``,
and a fixture parameter that takes it names the fixtures with ``using``.
A tier's fixture set up for a test without its marker fails that test
(``tests/conftest.py``), so a way in that the marking misses shows at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

#: Every Docker fixture (``docker_fixtures.py``) depends on it.
DOCKER_FIXTURES = frozenset({"docker_client"})
#: The fixtures that start an AWS emulator or reach one (``aws_fixtures.py``). ``aws``
#: asks for its server by name when it runs (moto, or MiniStack), so it counts itself.
EMULATOR_FIXTURES = frozenset(
    {"moto_server", "ministack_server", "moto_server_factory", "aws", "moto_of_its_own"}
)
#: Marker -> the fixtures that give a test that marker.
TIERS = {"docker": DOCKER_FIXTURES, "emulator": EMULATOR_FIXTURES}
#: The marker ``using`` puts on a parameter: the fixtures it asks for at run time.
USES_FIXTURES = "uses_fixtures"


def using(value: object, *fixtures: str) -> pytest.ParameterSet:
    """A fixture's parameter under which the fixture calls ``request.getfixturevalue``.

    ``fixtures`` are the names it asks for: the tiers then follow them as they
    follow the fixtures a test names. The parameter's id stays ``value``'s.
    """
    return pytest.param(value, marks=getattr(pytest.mark, USES_FIXTURES)(*fixtures))


def fixtures_used(item: pytest.Item) -> set[str]:
    """The fixtures ``item`` uses: those pytest found, and those its parameters name."""
    used = set(getattr(item, "fixturenames", ()))
    named = [name for mark in item.iter_markers(USES_FIXTURES) for name in mark.args]
    return used | _closure(item, named)


def tiers_of(item: pytest.Item) -> list[str]:
    """The tier markers ``item`` gets, in ``TIERS`` order."""
    used = fixtures_used(item)
    return [marker for marker, fixtures in TIERS.items() if used & fixtures]


def _closure(item: pytest.Item, names: Iterable[str]) -> set[str]:
    """``names`` and every fixture they depend on, as pytest resolves them for ``item``."""
    manager = item.session._fixturemanager
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for definition in manager.getfixturedefs(name, item) or ():
            pending.extend(definition.argnames)
    return seen
