"""The loop: take messages, keep them hidden while their jobs run, settle them.

Up to ``workers`` jobs run at once, each in its own thread with its own
message, heartbeat and cancel switch. The receiving thread asks the queue for
no more messages than there are free slots (at most 10 a call, SQS's limit),
and a message is under heartbeat from the moment it is received. A slot is
free once its job is finished (its result written, or nothing to write): on
a standard queue the job's thread deletes the message after that, while the
slot already runs the next one; a FIFO message is deleted first, since it
holds its group back until then. Before a
message runs, the handler's admission (opaque keys: a group, a position, the
causes it would meet) decides whether it starts, waits here for an earlier
message of its group, or goes back to the queue: see ``gate`` and ``backoff``.
The worker knows queues, messages, keys and outcomes, never what a message
means.

Stopping is cooperative: ``stop()`` stops taking messages, hands the messages
that have not started back at once, and lets the running jobs finish; a
second ``stop()`` (or the end of the grace period) cancels them all, and
their messages are made visible again at once. A ``FatalError`` in one job stops
the process the same way, the other jobs cancelled, before ``run`` raises it.
Signal handlers live in the CLI and only call ``stop()``.

A hold (``hold``: paused, login needed) stops the taking, not the jobs: while
one is on, nothing is received, waiting messages go back and the running jobs
go on; once the last is released, the loop takes messages again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from ..errors import FatalError, RunnerError, TransientError
from ..executor import Cancelled
from ..jobs.admission import UNRESTRICTED, Admission, Admits
from ..jobs.outcome import (
    Cause,
    Done,
    Drop,
    GoesBack,
    HandBack,
    Handler,
    JobContext,
    Outcome,
    Resend,
)
from ..observe.events import JobEvents, NoEvents
from ..queue import Message, Queue
from ..queue.base import MAX_DELAY_SECONDS, MAX_RECEIVE_BATCH, MAX_VISIBILITY_SECONDS
from .backoff import Backoffs
from .gate import Gate
from .heartbeat import Heartbeat, receipt_deadline
from .hold import Holds
from .settle import Settler
from .stats import WorkerSettings, WorkerStats

log = logging.getLogger(__name__)

#: Seconds before a message resent because its group is full is visible again.
GROUP_FULL_DELAY = 5
#: Seconds receiving rests when a whole batch went back without running (a backlog of
#: one participant or of a match that backs off), so that it is not cycled at full speed.
#: Only where the copies come straight back (FIFO: no per-message delay); a delayed
#: copy cannot, and a rest would only slow the other matches' messages.
HELD_BACK_REST = 1.0
#: Seconds before a message made visible after an unexpected error is tried again.
UNEXPECTED_ERROR_DELAY = 30
#: Longest wait on the worker's state without looking again (signals, timers).
IDLE_WAKE = 1.0
#: Receiving failed: every message would meet that, so receiving pauses.
RECEIVING = Cause("queue", shared=True)


def applied_delay(message: Message, outcome: GoesBack) -> int:
    """Seconds before a message sent back with ``outcome`` is visible again.

    A fresh copy on a FIFO queue (it has a group) comes back at once: FIFO
    queues refuse per-message delays. A copy's delay is cut to SQS's 15
    minutes; a released message's to its 12-hour visibility cap.
    """
    if isinstance(outcome, Resend):
        return 0 if message.group_id is not None else min(max(0, outcome.delay), MAX_DELAY_SECONDS)
    return min(max(0, outcome.delay), MAX_VISIBILITY_SECONDS)


def _back_at_once(messages: list[Message]) -> bool:
    """Whether copies of these messages, sent back, are visible again at once (FIFO)."""
    return any(message.group_id is not None for message in messages)


class _Held:
    """One message in this process, waiting for its turn or running, under heartbeat."""

    def __init__(self, message: Message, admission: Admission, heartbeat: Heartbeat) -> None:
        self.message = message
        self.admission = admission
        self.heartbeat = heartbeat
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None
        #: When it started, on the backoffs' clock (see ``Backoffs.started``).
        self.started_at: float | None = None

    def end_heartbeat(self) -> None:
        self.heartbeat.stop()


class Worker:
    def __init__(
        self,
        *,
        queue: Queue,
        handler: Handler,
        settings: WorkerSettings,
        name: str = "worker",
        events: JobEvents | None = None,
        holds: Holds | None = None,
    ) -> None:
        if settings.workers < 1:
            raise ValueError(f"workers must be at least 1, got {settings.workers}")
        self._queue = queue
        self._events: JobEvents = events or NoEvents()
        self._handler = handler
        self._admission: Callable[[Message], Admission] = (
            handler.admission if isinstance(handler, Admits) else (lambda message: UNRESTRICTED)
        )
        self._settings = settings
        self._name = name
        self._stopping = threading.Event()
        # Re-entrant: stop() runs in a signal handler, possibly while the main thread holds it.
        self._lock = threading.Condition(threading.RLock())
        self._held: list[_Held] = []
        self._threads: list[threading.Thread] = []
        self._gate: Gate[_Held] = Gate(max_per_group=settings.max_jobs_per_group)
        self._backoffs = Backoffs(initial=settings.backoff_initial, maximum=settings.backoff_max)
        self._shared_causes: set[str] = set()
        self._cancel_all = False
        self._running = 0
        self._fatal: FatalError | None = None
        self._settler = Settler(queue=queue, name=name, stopping=self._stopping)
        self._holds = holds or Holds(name=name)
        self.stats = WorkerStats()

    @property
    def handler(self) -> Handler:
        return self._handler

    @property
    def queue(self) -> Queue:
        return self._queue

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def holds(self) -> Holds:
        """The reasons to take no new job (pause, login needed); the CLI sets them."""
        return self._holds

    def _held_changed(self, holds: object) -> None:
        """A hold came or went: wake the receiving thread; give back what waits its turn."""
        with self._lock:
            waiting = self._gate.take_waiting() if self._holds.held() else []
            self._lock.notify_all()
        if waiting:
            threading.Thread(
                target=self._make_visible_all, args=(waiting,), name="make-visible", daemon=True
            ).start()

    # --- stopping -------------------------------------------------------------

    def stop(self, *, force: bool = False) -> None:
        """First call: finish the running jobs and exit. Second call or ``force``: cancel them."""
        with self._lock:
            first = not self._stopping.is_set()
            if force or not first:
                self._cancel_everything()
            self._stopping.set()
            waiting = self._gate.take_waiting() if first else []
            self._lock.notify_all()
        if waiting:
            # Queue calls do not belong in a signal handler: another thread makes them.
            threading.Thread(
                target=self._make_visible_all, args=(waiting,), name="make-visible", daemon=True
            ).start()
        grace = self._settings.grace_period
        if first and grace is not None and not self._cancel_all:
            timer = threading.Timer(grace, self._grace_over)
            timer.daemon = True
            timer.start()

    def _cancel_everything(self) -> None:
        """Cancel every running job (call with the lock held); their messages go back at once."""
        if not self._cancel_all:
            log.warning(
                "%s: cancelling the running jobs; their messages go back to the queue", self._name
            )
        self._cancel_all = True
        for held in self._held:
            held.cancel.set()

    def _grace_over(self) -> None:
        with self._lock:
            if not self._cancel_all:
                log.warning("%s: grace period over", self._name)
                self._cancel_everything()

    def _fail(self, exc: FatalError) -> None:
        """A job met a fatal error: keep the first, stop everything else at once."""
        with self._lock:
            if self._fatal is None:
                self._fatal = exc
        log.error("%s: %s; stopping", self._name, exc)
        self.stop(force=True)

    # --- the receiving thread -------------------------------------------------

    def run(self) -> WorkerStats:
        """Process messages until stopped or ``max_jobs`` are finished.

        Raises ``FatalError`` when the runner cannot go on (every held
        message has been made visible again and every job has ended first).
        """
        self._holds.listen(self._held_changed)
        try:
            while True:
                wanted = self._wait_for_room()
                if not wanted:
                    break
                messages = self._receive(wanted)
                self._events.polled()
                kept = [self._take(message) for message in messages]
                if messages and not any(kept) and _back_at_once(messages):
                    self._rest(HELD_BACK_REST)
        except BaseException:
            self.stop(force=True)
            raise
        finally:
            self._wait_for_jobs()
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    def _wait_for_room(self) -> int:
        """How many messages to ask for, once there is room (0: time to stop)."""
        limit = self._settings.max_jobs
        with self._lock:
            while True:
                if self._stopping.is_set():
                    return 0
                finished = self.stats.finished
                if limit and finished >= limit:
                    return 0
                room = self._settings.workers - len(self._held)
                if limit:
                    # Never take more than the jobs left to do: `num` finishes exactly num.
                    room = min(room, limit - finished - len(self._held))
                pause = self._shared_pause()
                if room > 0 and pause <= 0 and not self._holds.held():
                    return min(room, MAX_RECEIVE_BATCH)
                self._lock.wait(min(pause, IDLE_WAKE) if pause > 0 else IDLE_WAKE)

    def _shared_pause(self) -> float:
        """Seconds left of the longest backoff of a cause every message meets.

        While a probe of such a cause runs, receiving waits for its outcome
        (the end of a job wakes the receiving thread).
        """
        if any(self._backoffs.probing(key) for key in self._shared_causes):
            return IDLE_WAKE
        return max((self._backoffs.remaining(key) for key in self._shared_causes), default=0.0)

    def _receive(self, wanted: int) -> list[Message]:
        try:
            messages = self._queue.receive_many(
                self._settings.poll_seconds, self._settings.visibility_window, wanted
            )
        except TransientError as exc:
            log.warning("%s: receiving failed (%s)", self._name, exc)
            self._blame(RECEIVING)
            return []
        except FatalError:
            raise
        except RunnerError as exc:
            # An answer nobody classified (a proxy's error page, a skewed clock) may
            # pass: back off and try again rather than let the loop die.
            log.error("%s: receiving failed (%s); backing off", self._name, exc)
            self._blame(RECEIVING)
            return []
        with self._lock:
            self._backoffs.succeeded([RECEIVING.key])
        return messages

    def _rest(self, seconds: float) -> None:
        """Wait ``seconds``, or less if a job ends (it may free a group) or the worker stops."""
        with self._lock:
            self.stats.rests += 1
            if not self._stopping.is_set():
                self._lock.wait(seconds)

    def _take(self, message: Message) -> bool:
        """Hold a received message: start it or let it wait (True), or give it back (False)."""
        heartbeat = Heartbeat(
            self._queue, message, self._settings.visibility_window, self._settings.visibility_cap
        )
        heartbeat.start()
        held = _Held(message, self._admission_of(message), heartbeat)
        with self._lock:
            self.stats.received += 1
            self._held.append(held)
            if self._stopping.is_set() or self._holds.held():
                back_now, delayed = [held], []
            else:
                back_now, delayed = [], self._admit(held)
        self._make_visible_all(back_now)
        for item, delay in delayed:
            self._resend(item, delay)
        return held not in back_now and all(item is not held for item, _ in delayed)

    def _admission_of(self, message: Message) -> Admission:
        try:
            return self._admission(message)
        except Exception:
            log.exception("%s: cannot read the admission of message %s", self._name, message)
            return UNRESTRICTED

    def _admit(self, held: _Held) -> list[tuple[_Held, int]]:
        """Start ``held`` if it may; return what goes back with which delay (lock held)."""
        blocked = self._backoffs.blocking([*self._shared_causes, *held.admission.causes])
        if blocked is not None:
            key, seconds = blocked
            log.debug(
                "%s: message %s goes back: %s backs off for %.0fs",
                self._name,
                held.message.message_id,
                key,
                seconds,
            )
            return [(held, min(MAX_DELAY_SECONDS, max(1, math.ceil(seconds))))]
        decision = self._gate.offer(held)
        if decision.start:
            self._start(held)
        return [(item, GROUP_FULL_DELAY) for item in decision.back]

    def _wait_for_jobs(self) -> None:
        """Block until every held message is settled and every job thread has ended."""
        with self._lock:
            waiting = self._gate.take_waiting()
        self._make_visible_all(waiting)
        with self._lock:
            while self._held:
                self._lock.wait(IDLE_WAKE)
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    # --- giving back what does not run --------------------------------------

    def _make_visible_all(self, items: list[_Held]) -> None:
        """Make messages that have not started visible to every consumer again now."""
        for held in items:
            held.end_heartbeat()
            self._settler.make_visible(held.message, 0)
            self._forget(held)

    def _resend(self, held: _Held, delay: int) -> None:
        """A fresh copy visible after ``delay``: held back on purpose, it never feeds the DLQ."""
        held.end_heartbeat()
        self._settler.resend(held.message, held.message.body, delay)
        self._forget(held)

    def _forget(self, held: _Held) -> None:
        with self._lock:
            self.stats.held_back += 1
            self.stats.settled += 1
            self._held.remove(held)
            self._lock.notify_all()

    # --- the job threads -------------------------------------------------------

    def _start(self, held: _Held) -> None:
        """Run ``held`` in a thread of its own (lock held)."""
        self._running += 1
        self.stats.peak_running = max(self.stats.peak_running, self._running)
        # A job is no probe of receiving: the next receive is, and a job of
        # hours must not hold receiving back.
        shared = [key for key in self._shared_causes if key != RECEIVING.key]
        held.started_at = self._backoffs.started([*shared, *held.admission.causes])
        if self._cancel_all:
            held.cancel.set()
        thread = threading.Thread(
            target=self._run_job, args=(held,), name=f"job-{held.message.message_id[:8]}"
        )
        held.thread = thread
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _run_job(self, held: _Held) -> None:
        outcome: Outcome = HandBack(0, "the job ended without an outcome")
        started = time.monotonic()
        try:
            self._events.job_started(held.message)
            outcome = self._call(held)
        finally:
            held.end_heartbeat()
            with self._lock:
                # Before the message is back in the queue, where it could be received again.
                self._learn(held, outcome)
            self._end(held, outcome, time.monotonic() - started)

    def _end(self, held: _Held, outcome: Outcome, seconds: float) -> None:
        """Settle the message and free the slot, the slot held no longer than needed.

        A message made visible or resent goes back before its slot is free. A finished job's
        message on a standard queue is deleted after: its slot already takes
        the next message meanwhile (a delete that fails only brings back a
        finished trial, which is then seen as done). A FIFO message is deleted
        first, since it holds its group back until then.
        """
        message = held.message
        delete_after = isinstance(outcome, (Done, Drop)) and message.group_id is None
        if isinstance(outcome, GoesBack):
            outcome = self._settle(message, outcome)
        elif not delete_after:
            self._settler.delete(message)
        try:
            self._job_ended(held, outcome)
            self._events.job_finished(message, outcome, seconds)
        finally:
            if delete_after:
                self._settler.delete(message)

    def _call(self, held: _Held) -> Outcome:
        deadline = receipt_deadline(held.message, self._settings.visibility_cap)
        ctx = JobContext(deadline=deadline, cancel=held.cancel)
        try:
            return self._handler(held.message, ctx)
        except Cancelled as exc:
            log.warning("%s: %s", self._name, exc)
            with self._lock:
                self.stats.cancelled += 1
            return HandBack(0, "cancelled")
        except FatalError as exc:
            self._fail(exc)
            return HandBack(0, "the runner stops")
        except Exception:
            log.exception(
                "%s: unexpected error on message %s; it goes back to the queue",
                self._name,
                held.message.message_id,
            )
            with self._lock:
                self.stats.errors += 1
            return HandBack(UNEXPECTED_ERROR_DELAY, "unexpected error")

    def _settle(self, message: Message, outcome: GoesBack) -> GoesBack:
        """Put the message back; return ``outcome`` with the delay the queue really applies."""
        delay = applied_delay(message, outcome)
        log.info(
            "%s: message %s goes back to the queue (%s); visible again in %d s",
            self._name,
            message.message_id,
            outcome.reason,
            delay,
        )
        if isinstance(outcome, Resend):
            self._settler.resend(message, outcome.body, outcome.delay)
        else:
            self._settler.make_visible(message, outcome.delay)
        return replace(outcome, delay=delay)

    def _job_ended(self, held: _Held, outcome: Outcome) -> None:
        """Free the slot, count, learn from the outcome and start the next waiter of its group."""
        stale: list[_Held] = []
        with self._lock:
            self._running -= 1
            self._held.remove(held)
            self._count(outcome)
            for waiter in self._gate.finished(held):
                if self._holds.held() or (
                    time.monotonic() - waiter.message.received_at > self._settings.max_local_wait
                ):
                    self._gate.finished(waiter)  # it does not run on this receipt after all
                    stale.append(waiter)
                else:
                    self._start(waiter)
            self._lock.notify_all()
        for waiter in stale:
            log.info(
                "%s: message %s does not start now (it waited too long for its turn, or no new"
                " job is taken); it is resent as a fresh copy",
                self._name,
                waiter.message.message_id,
            )
            self._resend(waiter, 0)

    def _count(self, outcome: Outcome) -> None:
        self.stats.settled += 1
        if isinstance(outcome, Done):
            self.stats.done += 1
            self.stats.failed += outcome.failed
        elif isinstance(outcome, Drop):
            self.stats.dropped += 1
        else:
            self.stats.retried += 1

    def _learn(self, held: _Held, outcome: Outcome) -> None:
        """Back off from the cause the job blamed, or end the backoffs its success disproves."""
        causes = [*held.admission.causes, *self._shared_causes]
        if isinstance(outcome, Done):
            # A job that ran through proves its own causes and the shared ones fine.
            ended = self._backoffs.succeeded(causes, started_at=held.started_at)
            if ended:
                log.info("%s: %s working again", self._name, ", ".join(ended))
            return
        if isinstance(outcome, GoesBack) and outcome.backoff is not None:
            self._blame(outcome.backoff, started_at=held.started_at)
        self._backoffs.probe_ended(causes, started_at=held.started_at)

    def _blame(self, cause: Cause, *, started_at: float | None = None) -> None:
        with self._lock:
            pause = self._backoffs.failed(cause.key, started_at=started_at)
            if pause is None:
                return  # the same fault as the pause now running: said already
            if cause.shared:
                self._shared_causes.add(cause.key)
                log.warning(
                    "%s: %s failing; pausing new work for %.0fs", self._name, cause.key, pause
                )
            else:
                log.warning(
                    "%s: %s failing; its other messages go back to the queue for %.0fs",
                    self._name,
                    cause.key,
                    pause,
                )
