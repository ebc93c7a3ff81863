"""Removing finished containers off the job's critical path.

Removing a container (unmounting its layers, deleting its files) takes the
daemon from a few to tens of milliseconds, more under load: nothing the next
job needs to wait for. ``Remover`` hands the names to one background thread.
Nothing is lost on the way: ``close`` (at the runner's stop) removes what is
still queued before returning, and a container whose runner died before
removing it carries the runner's pid, so ``reaping.remove_orphans`` takes it
at the next start.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Seconds ``close`` waits for queued removals (each is quick; a stuck daemon is not waited on).
CLOSE_TIMEOUT = 60.0


class Remover:
    """One thread removing containers in the order they were handed in."""

    def __init__(self, *, remove: Callable[[str], None]) -> None:
        self._remove = remove
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, name: str) -> None:
        """Remove ``name`` soon; after ``close``, at once in the caller's thread."""
        with self._lock:
            if not self._closed:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="docker-remover", daemon=True
                    )
                    self._thread.start()
                self._names.put(name)
                return
        self._remove(name)

    def pending(self) -> int:
        """Names handed in and not yet removed (approximate, for tests and status)."""
        return self._names.qsize()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Remove everything still queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._names.put(None)
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "containers still being removed after %ss; the next start removes them", timeout
            )

    def _work(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                self._remove(name)
            except Exception:  # the thread must outlive one bad removal
                log.exception("removing container %s failed", name)
