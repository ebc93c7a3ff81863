"""The observer seam: what the worker, the executor and the login report as they go.

Kept to plain calls with plain values so that the worker needs no knowledge
of who listens (metrics, the status board, nothing at all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ..jobs.outcome import Outcome
from ..masking import secret_forms
from ..queue import Message
from ..queue.base import QueueStats


class JobEvents(Protocol):
    """Called from the worker's threads; implementations must be thread-safe and quick."""

    def polled(self) -> None:
        """The loop asked the queue for work (whether or not it got any)."""

    def job_started(self, message: Message) -> None:
        """A message was received and its job begins in the calling thread."""

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        """The job of ``message`` ended with ``outcome`` (a finished one may still be deleted)."""

    def container_started(self, image: str, secrets: Sequence[str]) -> None:
        """The calling thread's job starts a container of ``image``.

        ``secrets`` are the values of its environment: an observer that shows
        text from the run must redact them, and must not keep them longer.
        """

    def container_finished(self, image: str, seconds: float) -> None:
        """That container is gone after ``seconds``."""

    def queue_depth(self, messages: int) -> None:
        """SQS's ApproximateNumberOfMessages of the runner's queue."""

    def queue_stats(self, stats: QueueStats) -> None:
        """A sample of the queue as every runner sees it (counts, oldest age, retention)."""

    def image_pulled(self, image: str) -> None:
        """The executor pulled ``image``."""

    def token_refreshed(self) -> None:
        """The administrator's access token was renewed."""


class NoEvents:
    """The default observer: nobody listens."""

    def polled(self) -> None:
        pass

    def job_started(self, message: Message) -> None:
        pass

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        pass

    def container_started(self, image: str, secrets: Sequence[str]) -> None:
        pass

    def container_finished(self, image: str, seconds: float) -> None:
        pass

    def queue_depth(self, messages: int) -> None:
        pass

    def queue_stats(self, stats: QueueStats) -> None:
        pass

    def image_pulled(self, image: str) -> None:
        pass

    def token_refreshed(self) -> None:
        pass


class Fanout(NoEvents):
    """Passes every event to each of ``observers`` in turn."""

    def __init__(self, *, observers: Sequence[JobEvents]) -> None:
        self._observers = tuple(observers)

    def polled(self) -> None:
        for observer in self._observers:
            observer.polled()

    def job_started(self, message: Message) -> None:
        for observer in self._observers:
            observer.job_started(message)

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        for observer in self._observers:
            observer.job_finished(message, outcome, seconds)

    def container_started(self, image: str, secrets: Sequence[str]) -> None:
        for observer in self._observers:
            observer.container_started(image, secrets)

    def container_finished(self, image: str, seconds: float) -> None:
        for observer in self._observers:
            observer.container_finished(image, seconds)

    def queue_depth(self, messages: int) -> None:
        for observer in self._observers:
            observer.queue_depth(messages)

    def queue_stats(self, stats: QueueStats) -> None:
        for observer in self._observers:
            observer.queue_stats(stats)

    def image_pulled(self, image: str) -> None:
        for observer in self._observers:
            observer.image_pulled(image)

    def token_refreshed(self) -> None:
        for observer in self._observers:
            observer.token_refreshed()


def environment_values(environment: Mapping[str, str]) -> list[str]:
    """The values the status page masks (the package's one redaction rule)."""
    return secret_forms(environment.values())
