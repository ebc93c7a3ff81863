"""When a runner last moved on: the gauge a stall alert reads.

A runner makes progress when it settles a job, or when it asks the queue for
work with no job running (it is idle, or about to start what it receives).
A runner whose every slot holds a job that never ends stops polling and
settles nothing: its gauge stands still while ``up`` stays 1, which is what
``OpthubRunnerStalled`` in deploy/prometheus/ looks for. The start counts as
progress, so that a runner that has just started is not taken for stalled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge

from ..jobs.outcome import Outcome
from ..queue import Message
from .events import NoEvents

NAME = "opthub_runner_last_progress_timestamp_seconds"


class ProgressClock(NoEvents):
    """Sets ``opthub_runner_last_progress_timestamp_seconds`` from the worker's events."""

    def __init__(
        self, *, registry: CollectorRegistry, mode: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._gauge = Gauge(
            NAME,
            "Unix time the runner last settled a job or polled the queue with no job running.",
            ["mode"],
            registry=registry,
        ).labels(mode=mode)
        self._clock = clock
        self._lock = threading.Lock()
        self._running = 0
        self._gauge.set(clock())

    def polled(self) -> None:
        with self._lock:
            if self._running == 0:
                self._gauge.set(self._clock())

    def job_started(self, message: Message) -> None:
        with self._lock:
            self._running += 1

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        with self._lock:
            self._running -= 1
            self._gauge.set(self._clock())
