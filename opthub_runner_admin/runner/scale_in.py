"""Scale-in protection that follows the runner's jobs (``scale_in_protection``).

An Auto Scaling group that scales in picks any unprotected instance and
terminates it, a busy one included. With this observer the instance is
protected from the moment its first job starts until the last one ends, and
unprotected while idle, so that scale-in only ever takes idle runners. The
AWS calls run on a thread of their own (job events must be quick) that
applies the latest wanted state; a failed call is logged and tried again on
the next change or after ``retry_seconds``.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from ..errors import RunnerError
from ..jobs.outcome import Outcome
from ..observe.events import NoEvents
from ..queue import Message

log = logging.getLogger("opthub_runner_admin")

RETRY_SECONDS = 30.0


class Protection(Protocol):
    def set(self, protected: bool) -> None: ...


class ScaleInGuard(NoEvents):
    """A ``JobEvents`` observer that protects the instance while any job runs."""

    def __init__(self, *, protection: Protection, retry_seconds: float = RETRY_SECONDS) -> None:
        self._protection = protection
        self._retry = retry_seconds
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._running = 0
        self._applied: bool | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the thread, which first lifts any protection a previous run left on."""
        self._thread = threading.Thread(target=self._apply_loop, name="scale-in", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Lifts the protection (the runner is leaving) and stops the thread."""
        with self._lock:
            self._closed = True
            self._running = 0
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(10)

    def job_started(self, message: Message) -> None:
        with self._lock:
            self._running += 1
            self._changed.notify_all()

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        with self._lock:
            self._running -= 1
            self._changed.notify_all()

    def _apply_loop(self) -> None:
        while True:
            with self._lock:
                while self._applied == (self._running > 0) and not self._closed:
                    self._changed.wait()
                wanted, closing = self._running > 0, self._closed
            if not self._apply(wanted) and not closing:
                with self._lock:
                    self._changed.wait(self._retry)
            if closing:
                return

    def _apply(self, wanted: bool) -> bool:
        try:
            self._protection.set(wanted)
        except RunnerError as exc:
            log.warning("scale-in protection %s failed: %s", "on" if wanted else "off", exc)
            return False
        with self._lock:
            self._applied = wanted
        log.info("scale-in protection %s", "on: a job runs" if wanted else "off: idle")
        return True
