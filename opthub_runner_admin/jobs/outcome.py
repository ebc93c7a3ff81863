"""How a job ended, as far as the worker must act on its message."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from ..queue import Message


@dataclass(frozen=True)
class Done:
    """The trial has its result in the table (written now or before): delete the message.

    ``admin_message`` carries a Failed result's administrator details, for
    the operator's views (status page); empty for a success.
    """

    summary: str
    #: Not part of equality: two Done of the same summary settle a message alike.
    admin_message: str = field(default="", compare=False)

    @property
    def failed(self) -> bool:
        """A Failed result was written now (``TrialJob.write`` ends its summary so)."""
        return self.summary.endswith(" Failed")


@dataclass(frozen=True)
class Drop:
    """The message can never succeed (bad body, no solution after several tries): delete it."""

    reason: str


@dataclass(frozen=True)
class Cause:
    """What a failure is blamed on, so that only the work meeting it backs off.

    ``key`` names the cause (``match:<id>``, ``docker``, ``aws``, ``api``):
    while it backs off, messages whose admission lists the key go back to the
    queue without running. ``shared`` causes are met by every message (the
    Docker daemon or AWS away): they pause receiving altogether.
    """

    key: str
    shared: bool = False


#: The runner's own machine fails (its disk, its files): every message would meet it.
RUNNER = Cause("runner", shared=True)


@dataclass(frozen=True)
class HandBack:
    """Nothing was decided: the message itself is visible again after ``delay`` seconds.

    Its receive count goes on, so that a message that keeps failing this way
    reaches the dead-letter queue (or the job's own bound on receives).
    ``backoff`` names the cause of trouble that other messages would meet too
    (an administrator's mistake about one match, the Docker daemon gone): the
    worker backs off from that cause alone, doubling its pause while the
    trouble lasts.
    """

    delay: int
    reason: str
    backoff: Cause | None = None


@dataclass(frozen=True)
class Resend:
    """Nothing was decided, and nobody's trial is at fault: a fresh copy goes back instead.

    The copy carries ``body`` and is visible after ``delay`` seconds; the
    message is deleted. The copy's receive count starts again, so that
    deliberate returns (a score waiting for earlier trials, a match's image
    missing, Docker gone) never reach the dead-letter queue. ``backoff`` as
    for ``HandBack``.
    """

    delay: int
    reason: str
    body: str
    backoff: Cause | None = None


#: A job that decided nothing: its message goes back, itself or as a fresh copy.
GoesBack: TypeAlias = HandBack | Resend
Outcome: TypeAlias = Done | Drop | HandBack | Resend


@dataclass(frozen=True)
class JobContext:
    """What the worker lends a job: its time budget and the operator's cancel switch."""

    deadline: float
    cancel: threading.Event

    def remaining(self) -> float:
        """Seconds left before SQS may hand the message to someone else (less a margin)."""
        return self.deadline - time.monotonic()


class Handler(Protocol):
    def __call__(self, message: Message, ctx: JobContext, /) -> Outcome: ...
