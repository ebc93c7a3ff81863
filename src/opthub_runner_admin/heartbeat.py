"""Keeps a held message invisible while its job runs.

The contract asks for short windows renewed before they lapse, rather than
one long timeout: if the runner dies, its message comes back to the others
within one window instead of after the job's whole timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from .config import SQS_MAX_VISIBILITY
from .errors import RunnerError, TransientError
from .queue import Message, Queue

log = logging.getLogger(__name__)

#: Renewals stop this many seconds before SQS's 12-hour cap on one receipt.
CAP_MARGIN = 60


def receipt_deadline(message: Message) -> float:
    """The monotonic time after which SQS may hand the message to another consumer."""
    return message.received_at + SQS_MAX_VISIBILITY - CAP_MARGIN


class Heartbeat:
    """Context manager: renews visibility every third of ``window`` until the block ends."""

    def __init__(self, queue: Queue, message: Message, window: int) -> None:
        self._queue = queue
        self._message = message
        self._window = window
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{message.message_id[:8]}", daemon=True
        )
        self.renewals = 0

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        period = max(self._window / 3, 0.2)
        while not self._done.wait(period):
            left = receipt_deadline(self._message) - time.monotonic()
            seconds = int(min(self._window, left))
            if seconds <= 0:
                log.warning(
                    "message %s reached SQS's 12-hour cap; no more renewals",
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
