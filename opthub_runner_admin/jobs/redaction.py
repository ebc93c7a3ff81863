"""Keeping the match's private environment out of the Failed items the runner writes.

A problem image may print its environment to stderr (which the administrator's
message quotes) or put a connection string in its ``error`` (which the
participant reads). The environment holds the administrator's secrets, so
every value of it is blanked out of both texts before they are written or
logged. What a successful image prints as its result (``objective``,
``info``) is the image author's own output and is stored as printed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypeVar

from ..executor import Execution
from ..masking import redact, secret_forms
from ..model import Failure

R = TypeVar("R")


def redact_failure(result: R | Failure, environment: Mapping[str, str]) -> R | Failure:
    """``result`` with every environment value blanked out if it is a Failure."""
    if not isinstance(result, Failure):
        return result
    secrets = secret_forms(environment.values())
    if not secrets:
        return result
    return Failure(
        message=redact(result.message, secrets), admin_message=redact(result.admin_message, secrets)
    )


def redact_streams(execution: Execution, environment: Mapping[str, str]) -> Execution:
    """``execution`` with the environment's values blanked out of stdout and stderr.

    For what prints a run's output to a person (``try``, ``doctor``); the
    jobs keep the raw output, since the result is read from it.
    """
    secrets = secret_forms(environment.values())
    if not secrets:
        return execution
    return dataclasses.replace(
        execution,
        stdout=redact(execution.stdout, secrets),
        stderr=redact(execution.stderr, secrets),
    )
