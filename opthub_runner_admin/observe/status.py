"""The status line: every ``status_interval`` seconds, what the runner has done and is doing.

The same thread samples the queue (``FleetQueue.stats``: visible, in flight,
delayed, the oldest message's age, the dead letters) for the line, the page
and its chart, and the metrics' depth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..fleet.queue_counts import age_text
from ..queue.base import QueueStats
from .board import Snapshot, StatusBoard
from .events import JobEvents

log = logging.getLogger(__name__)

#: How often the depth is sampled when the status line is off.
DEPTH_INTERVAL = 30.0


def status_line(mode: str, snapshot: Snapshot) -> str:
    depth = "?" if snapshot.queue_depth is None else str(snapshot.queue_depth)
    text = (
        f"{mode} status: {snapshot.done} done, {snapshot.failed} failed,"
        f" {len(snapshot.in_flight)} in flight, {snapshot.rate_per_minute:.1f} jobs/min,"
        f" queue depth {depth}"
    )
    if snapshot.retried or snapshot.dropped:
        text += f", {snapshot.retried} retried, {snapshot.dropped} dropped"
    if snapshot.runner_fault:
        text += f"; RUNNER FAULT (work paused, no result written): {snapshot.runner_fault}"
    if snapshot.queue is not None and snapshot.queue.dead_letters:
        text += f", {snapshot.queue.dead_letters} dead letters (opthub-runner dlq list)"
    if snapshot.queue is not None and snapshot.queue.retention_left is not None:
        text += (
            f", oldest {age_text(snapshot.queue.oldest_age)}"
            f" ({age_text(snapshot.queue.retention_left)} before SQS deletes it)"
        )
    for job in snapshot.slow:
        minutes = job.running_for(snapshot.now) / 60
        text += (
            f"; SLOW: participant {job.participant} trial {job.trial} (match {job.match})"
            f" running {minutes:.0f} min"
        )
    return text


class StatusReporter:
    """A daemon thread: sample the depth, log the status line, until ``stop``."""

    def __init__(
        self,
        *,
        mode: str,
        board: StatusBoard,
        events: JobEvents,
        stats: Callable[[], QueueStats | None],
        interval: float,
    ) -> None:
        self._mode = mode
        self._board = board
        self._events = events
        self._stats = stats
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tick(self) -> None:
        """Sample the queue and, if the line is on, log it."""
        try:
            stats = self._stats()
        except Exception:  # a failed sample must never stop the runner
            log.debug("cannot read the queue's counts", exc_info=True)
            stats = None
        if stats is not None:
            self._events.queue_stats(stats)  # the board, the metrics, the retention watch
            self._events.queue_depth(stats.visible)
        if self._interval > 0:
            snapshot = self._board.snapshot()
            log.info(
                "%s",
                status_line(self._mode, snapshot),
                extra={
                    "mode": self._mode,
                    "event": "status",
                    "done": snapshot.done,
                    "failed": snapshot.failed,
                    "in_flight": len(snapshot.in_flight),
                    "rate_per_minute": round(snapshot.rate_per_minute, 2),
                    "queue_depth": snapshot.queue_depth,
                    "slow_jobs": [
                        {"participant": j.participant, "trial": j.trial} for j in snapshot.slow
                    ],
                },
            )

    def _loop(self) -> None:
        wait = self._interval if self._interval > 0 else DEPTH_INTERVAL
        self.tick()
        while not self._stop.wait(wait):
            self.tick()
