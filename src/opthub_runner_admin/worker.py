"""The loop: take a message, keep it hidden while its job runs, settle it.

The worker knows queues, messages and outcomes, not what a message means:
the handler decides that. Stopping is cooperative: ``stop()`` stops taking
messages and lets the running job finish; a second ``stop()`` (or the end of
the grace period) cancels the job, whose message is then handed back at once.
Signal handlers live in the CLI and only call ``stop()``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from .errors import FatalError, RunnerError, TransientError
from .executor import Cancelled
from .heartbeat import SQS_CAP, Heartbeat, VisibilityCap, receipt_deadline
from .jobs.outcome import Done, Drop, Handler, JobContext, Outcome, Retry
from .observe.events import JobEvents, NoEvents
from .queue import Message, Queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    #: Seconds one long poll of an empty queue lasts (the ``interval`` key; 1..20).
    poll_seconds: int = 2
    #: Heartbeat window: a dead runner's message is visible again after at most this.
    visibility_window: int = 60
    #: Stop after this many finished jobs (0 = no limit).
    max_jobs: int = 0
    #: After stop(), seconds the running job may take before it is cancelled (None = no limit).
    grace_period: float | None = None
    #: First and longest pause after trouble that the next message would meet too.
    backoff_initial: float = 5.0
    backoff_max: float = 300.0
    #: SQS's 12-hour cap on one receipt and the margins kept inside it (tests shorten it).
    visibility_cap: VisibilityCap = SQS_CAP


@dataclass
class WorkerStats:
    received: int = 0
    done: int = 0
    dropped: int = 0
    retried: int = 0
    cancelled: int = 0
    errors: int = 0
    #: Messages settled in any way (deleted, put back or cancelled).
    settled: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.dropped


class Worker:
    def __init__(
        self,
        *,
        queue: Queue,
        handler: Handler,
        settings: WorkerSettings,
        name: str = "worker",
        events: JobEvents | None = None,
    ) -> None:
        self._queue = queue
        self._events: JobEvents = events or NoEvents()
        self._handler = handler
        self._settings = settings
        self._name = name
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        self._backoff = settings.backoff_initial
        self.stats = WorkerStats()

    @property
    def handler(self) -> Handler:
        return self._handler

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self, *, force: bool = False) -> None:
        """First call: finish the current job and exit. Second call or ``force``: cancel it."""
        if force or self._stopping.is_set():
            log.warning(
                "%s: cancelling the running job; its message goes back to the queue", self._name
            )
            self._cancel.set()
        self._stopping.set()
        grace = self._settings.grace_period
        if grace is not None and not self._cancel.is_set():
            timer = threading.Timer(grace, self._grace_over)
            timer.daemon = True
            timer.start()

    def _grace_over(self) -> None:
        if not self._cancel.is_set():
            log.warning("%s: grace period over", self._name)
            self._cancel.set()

    def run(self) -> WorkerStats:
        """Process messages until stopped or ``max_jobs`` are finished.

        Raises ``FatalError`` when the runner cannot go on (the held message,
        if any, has been handed back first).
        """
        limit = self._settings.max_jobs
        while not self._stopping.is_set() and not (limit and self.stats.finished >= limit):
            message = self._receive()
            self._events.polled()
            if message is None:
                continue
            if self._stopping.is_set():
                self._hand_back(message, 0)
                break
            self._process(message)
        return self.stats

    def _receive(self) -> Message | None:
        try:
            return self._queue.receive(
                self._settings.poll_seconds, self._settings.visibility_window
            )
        except TransientError as exc:
            log.warning("%s: receiving failed (%s)", self._name, exc)
            self._pause()
            return None
        except FatalError:
            raise
        except RunnerError as exc:
            # An answer nobody classified (a proxy's error page, a skewed clock) may
            # pass: back off and try again rather than let the loop die.
            log.error("%s: receiving failed (%s); backing off", self._name, exc)
            self._pause()
            return None

    def _process(self, message: Message) -> None:
        self.stats.received += 1
        self._events.job_started(message)
        started = time.monotonic()
        cap = self._settings.visibility_cap
        ctx = JobContext(deadline=receipt_deadline(message, cap), cancel=self._cancel)
        outcome: Outcome
        with Heartbeat(self._queue, message, self._settings.visibility_window, cap):
            try:
                outcome = self._handler(message, ctx)
            except Cancelled as exc:
                log.warning("%s: %s", self._name, exc)
                self.stats.cancelled += 1
                outcome = Retry(0, "cancelled")
            except FatalError as exc:
                self._hand_back(message, 0)
                self._events.job_finished(message, Retry(0, str(exc)), time.monotonic() - started)
                raise
            except Exception:
                log.exception(
                    "%s: unexpected error on message %s; it goes back to the queue",
                    self._name,
                    message.message_id,
                )
                self.stats.errors += 1
                outcome = Retry(30, "unexpected error", backoff=True)
        self._settle(message, outcome)
        self._events.job_finished(message, outcome, time.monotonic() - started)

    def _settle(self, message: Message, outcome: Outcome) -> None:
        self.stats.settled += 1
        if isinstance(outcome, (Done, Drop)):
            self._delete(message)
            if isinstance(outcome, Done):
                self.stats.done += 1
                self._backoff = self._settings.backoff_initial
            else:
                self.stats.dropped += 1
            return
        self.stats.retried += 1
        if outcome.body is not None:
            self._requeue(message, outcome.body, outcome.delay)
        else:
            self._hand_back(message, outcome.delay)
        if outcome.backoff:
            self._pause()

    def _delete(self, message: Message) -> None:
        # A message we fail to delete comes back later and is seen as already done.
        for attempt in range(3):
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

    def _requeue(self, message: Message, body: str, delay: int) -> None:
        try:
            self._queue.requeue(message, body, delay)
        except RunnerError as exc:
            log.warning(
                "%s: could not put message %s back (%s); it returns after its visibility window",
                self._name,
                message.message_id,
                exc,
            )

    def _hand_back(self, message: Message, delay: int) -> None:
        try:
            self._queue.release(message, delay)
        except RunnerError as exc:
            log.warning(
                "%s: could not release message %s (%s); it returns after its visibility window",
                self._name,
                message.message_id,
                exc,
            )

    def _pause(self) -> None:
        """Back off before the next message; stop() ends the pause early."""
        pause = self._backoff
        self._backoff = min(self._backoff * 2, self._settings.backoff_max)
        log.info("%s: pausing %.0fs before taking more work", self._name, pause)
        self._stopping.wait(pause)
