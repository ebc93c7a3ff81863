"""Settling a held message with the queue: delete, make visible again, or resend as a fresh copy.

Each call is tried with what it can cost: a message we fail to delete comes
back later and is seen as already done; one we fail to make visible or resend returns
after its visibility window. None of these raises.
"""

from __future__ import annotations

import logging
import threading

from ..errors import RunnerError, TransientError
from ..queue import Message, Queue

log = logging.getLogger(__name__)

#: Attempts at deleting a finished job's message.
DELETE_ATTEMPTS = 3


class Settler:
    """The queue calls that end a message's stay in this process."""

    def __init__(self, *, queue: Queue, name: str, stopping: threading.Event) -> None:
        self._queue = queue
        self._name = name
        self._stopping = stopping

    def delete(self, message: Message) -> None:
        for attempt in range(DELETE_ATTEMPTS):
            try:
                self._queue.delete(message)
                return
            except TransientError as exc:
                log.warning(
                    "%s: deleting message %s failed (%s)", self._name, message.message_id, exc
                )
                self._stopping.wait(2**attempt)
            except RunnerError as exc:
                log.warning(
                    "%s: message %s could not be deleted (%s)", self._name, message.message_id, exc
                )
                return

    def resend(self, message: Message, body: str, delay: int) -> None:
        try:
            self._queue.resend(message, body, delay)
        except RunnerError as exc:
            log.warning(
                "%s: could not resend message %s (%s); it returns after its visibility window",
                self._name,
                message.message_id,
                exc,
            )

    def make_visible(self, message: Message, delay: int = 0) -> None:
        try:
            self._queue.make_visible(message, delay)
        except RunnerError as exc:
            log.warning(
                "%s: could not make message %s visible (%s); "
                "it returns after its visibility window",
                self._name,
                message.message_id,
                exc,
            )
