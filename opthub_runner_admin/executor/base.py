"""The executor seam: one container run, bounded in time and in captured output."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..errors import AdminError, RunnerError, TransientError
from .usage import NOT_MEASURED, TrialUsage


@dataclass(frozen=True)
class RunSpec:
    """What to run. ``environment`` holds secrets and is left out of ``repr``.

    ``timeout`` counts from the container's start; ``deadline`` (monotonic) is
    an absolute bound that also holds when pulling the image or creating the
    container took long (SQS's 12-hour cap on the message does not wait).
    """

    image: str
    stdin_lines: Sequence[str]
    timeout: float
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    command: Sequence[str] | None = None
    deadline: float | None = None


@dataclass(frozen=True)
class Execution:
    """What one run produced.

    ``stdout`` and ``stderr`` are the LAST bytes the container wrote, up to
    the executor's output limit (decoded as UTF-8 with replacement): the
    result is the last line of stdout, and the end of stderr is what an
    administrator needs. ``stdout_truncated`` says that the start was cut.
    ``exit_code`` is None when the container was killed at the timeout.
    ``oom_killed`` says that the kernel killed a process of the container for
    exceeding ``memory_limit`` (bytes; None when the container had no limit).
    ``outside_signal`` is the signal that ended the container when neither the
    runner (timeout, cancel) nor the memory limit sent it: someone else killed
    it (``docker kill``, a daemon restart, the host), so the run says nothing
    about the solution (``executor/exits.py``). ``usage`` is what the run
    used (``executor/usage.py``), for the operator's eyes only.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    started_at: datetime
    finished_at: datetime
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    oom_killed: bool = False
    memory_limit: int | None = None
    outside_signal: int | None = None
    usage: TrialUsage = NOT_MEASURED


class ImageNotAvailable(AdminError):
    """The image is neither present nor pullable with the runner's credentials."""


class ContainerRejected(AdminError):
    """Docker refused to create or start the container (bad command, entrypoint, option).

    The image or the operator's configuration is at fault, not the participant,
    so this is an ``AdminError``: the message goes back to the queue.
    """


class DockerUnavailable(TransientError):
    """The Docker daemon cannot be reached; the job should be retried when it is back."""


class Cancelled(RunnerError):
    """The run was stopped on purpose (the operator's second signal); nothing was decided."""


class Executor(Protocol):
    def run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        """Run ``spec`` to completion, its timeout, or until ``cancel`` is set.

        The container is gone when this returns or raises (unless the
        executor was told to keep containers). Raises ``ImageNotAvailable`` or
        ``ContainerRejected`` (the administrator's to fix), ``DockerUnavailable``
        (retry later) or ``Cancelled``.
        """
        ...
