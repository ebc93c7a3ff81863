"""A Cognito of short tokens for one test (``platform_side/cognito_standin.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opthub_runner_admin.platform_side.cognito_standin import CognitoStandIn


@pytest.fixture
def cognito_stand_in() -> Iterator[CognitoStandIn]:
    """A Cognito of short tokens for one test, with nothing behind it."""
    stand_in = CognitoStandIn()
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
