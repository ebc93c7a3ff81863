"""An observer of what each trial's container used, told with the trial's match."""

from __future__ import annotations

from ..jobs.messages import BadMessage, parse_body
from ..jobs.outcome import Outcome
from ..queue import Message
from .events import NoEvents
from .usage import ContainerUsage, PerThread


class TrialUsageObserver(NoEvents):
    """Pairs a job's ``container_used`` with its message; subclasses get ``trial_used``.

    The worker reports a job's start, its container and its end from the job's
    own thread, so the figures wait in a ``PerThread`` until the job's end names
    the match.
    """

    def __init__(self) -> None:
        self._used = PerThread()

    def job_started(self, message: Message) -> None:
        self._used.take()  # nothing of an earlier job of this thread is left over

    def container_used(self, image: str, used: ContainerUsage) -> None:
        self._used.put(used)

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        used = self._used.take()
        if used is None:
            return
        try:
            match = parse_body(message.body).ref.match_id
        except BadMessage:
            return  # a bad message runs no container
        self.trial_used(match, used)

    def trial_used(self, match: str, used: ContainerUsage) -> None:
        """The container of a trial of ``match`` used ``used``."""
