"""Exceptions shared across the seams.

Each concrete implementation (DynamoDB, SQS, Docker, GraphQL) translates its
library's errors into these, so that jobs and the worker can decide what to do
without importing botocore, docker or gql.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Base class of the runner's own errors."""


class AlreadyDone(RunnerError):
    """The trial already has a result: the flag item's condition cancelled the write."""


class TransientError(RunnerError):
    """Worth retrying after a backoff: throttling, 5xx, a dropped connection, Docker away."""


class AdminError(RunnerError):
    """Something only the administrator can fix (credentials, permissions, catalogue).

    Never turned into a Failed item: the message goes back to the queue and the
    runner backs off, so that participants do not pay for an operator's mistake.
    """


class FatalError(RunnerError):
    """The runner cannot go on (for example a login that can no longer be renewed)."""


class SetupError(FatalError):
    """The runner cannot go on, and starting it again cannot help until the setup is fixed.

    A refused password, an unknown user pool or app client: the CLI exits
    with ``EX_CONFIG`` (78), which the systemd unit lists in
    ``RestartPreventExitStatus``, so that systemd does not retry every 30 s
    (retried wrong passwords can lock the account).
    """


class ResultRejected(RunnerError):
    """DynamoDB refused the result item as it is; writing the same item again cannot help."""


class ResultTooLarge(ResultRejected):
    """The result item cannot be stored as it is (size or nesting over DynamoDB's limits)."""


class ConfigError(Exception):
    """A configuration the runner cannot start with; one line per problem for the operator."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
