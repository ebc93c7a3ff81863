"""Keeps a held message invisible while its job runs.

The contract asks for short windows renewed before they lapse, rather than
one long timeout: if the runner dies, its message comes back to the others
within one window instead of after the job's whole timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from ..errors import RunnerError, TransientError
from ..queue import Message, Queue
from ..queue.base import MAX_VISIBILITY_SECONDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisibilityCap:
    """SQS's cap on how long one receipt may keep a message hidden, and margins inside it.

    A job that runs to the cap must still write its Failed item while the
    message is hidden: the container is stopped ``job_margin`` seconds before
    the cap, and renewals hide the message until ``renewal_margin`` seconds
    before it, so minutes lie between the two. Tests inject a short cap.
    """

    seconds: int = MAX_VISIBILITY_SECONDS
    job_margin: int = 600
    renewal_margin: int = 120

    def job_deadline(self, message: Message) -> float:
        """Monotonic time by which the job's container must be stopped."""
        return message.received_at + self.seconds - self.job_margin

    def renewal_deadline(self, message: Message) -> float:
        """Monotonic time up to which renewals keep the message hidden."""
        return message.received_at + self.seconds - self.renewal_margin


#: SQS's own cap (12 hours) with its default margins.
SQS_CAP = VisibilityCap()


def receipt_deadline(message: Message, cap: VisibilityCap = SQS_CAP) -> float:
    """The monotonic time by which the job must be over (see ``VisibilityCap``)."""
    return cap.job_deadline(message)


class Heartbeat:
    """Context manager: renews visibility every third of ``window`` until the block ends."""

    def __init__(
        self, queue: Queue, message: Message, window: int, cap: VisibilityCap = SQS_CAP
    ) -> None:
        self._queue = queue
        self._message = message
        self._window = window
        self._cap = cap
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{message.message_id[:8]}", daemon=True
        )
        self.renewals = 0

    def start(self) -> None:
        """Renew from now on (the worker starts at receipt and stops at settlement)."""
        self._thread.start()

    def stop(self) -> None:
        """No renewal after this returns: the message can be deleted, made visible or resent."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _beat(self) -> None:
        period = max(self._window / 3, 0.2)
        while not self._done.wait(period):
            left = self._cap.renewal_deadline(self._message) - time.monotonic()
            seconds = int(min(self._window, left))
            if seconds <= 0:
                log.warning(
                    "message %s is near SQS's 12-hour cap; no more renewals",
                    self._message.message_id,
                )
                return
            try:
                self._queue.extend(self._message, seconds)
                self.renewals += 1
            except TransientError as exc:
                log.warning(
                    "could not renew message %s (%s); trying again", self._message.message_id, exc
                )
            except RunnerError as exc:
                log.error(
                    "message %s can no longer be renewed (%s); another runner may take it",
                    self._message.message_id,
                    exc,
                )
                return
