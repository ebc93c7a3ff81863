"""A warning in the log when SQS is about to delete a waiting trial.

A queue keeps a message for its retention period (``MessageRetentionPeriod``,
4 days by default, at most 14). A runner stopped, paused or stuck longer
loses the trials still waiting, for good: said once each time the oldest
message's time left falls under ``RETENTION_WARNING_SECONDS``, and once when
it is back above it.
"""

from __future__ import annotations

import logging
import threading

from ..fleet.queue_counts import age_text
from ..queue.base import QueueStats
from .events import NoEvents

log = logging.getLogger(__name__)

#: Time left for the oldest message under which the runner warns: a day.
RETENTION_WARNING_SECONDS = 86400.0


class RetentionWatch(NoEvents):
    """A ``JobEvents`` observer of the queue's samples that warns once per crossing."""

    def __init__(self, *, mode: str, threshold: float = RETENTION_WARNING_SECONDS) -> None:
        self._mode = mode
        self._threshold = threshold
        self._lock = threading.Lock()
        self._warned = False

    def queue_stats(self, stats: QueueStats) -> None:
        left = stats.retention_left
        if left is None:
            return
        with self._lock:
            short = left < self._threshold
            crossed = short != self._warned
            self._warned = short
        if crossed and short:
            log.warning(
                "%s queue: its oldest message (%s old) is deleted by SQS in %s"
                " (MessageRetentionPeriod %s): run a runner now, or that trial is lost",
                self._mode,
                age_text(stats.oldest_age),
                age_text(left),
                age_text(stats.retention_seconds),
                extra={"mode": self._mode, "event": "retention_short", "seconds_left": left},
            )
        elif crossed:
            log.info("%s queue: the oldest message has %s left again", self._mode, age_text(left))
