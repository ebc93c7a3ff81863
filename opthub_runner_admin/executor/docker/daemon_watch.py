"""Whether the Docker daemon answers, and what to do once it answers again.

A Docker restart (``systemctl restart docker``, an unattended upgrade) cuts
every connection at once; without live-restore it kills every container. The
jobs that met it are handed back by the worker (``DockerUnavailable`` is a
transient error), but what the executor could not remove while the daemon was
away stays on the daemon: it carries this live runner's pid, so no other
runner's start reaps it. ``DaemonWatch`` is told when a call found the daemon
away (``lost``), says so once in the log, pings it with a growing pause in
the background, and once it answers says so again and runs the ``on_back``
callback (the executor removes what it left, warm containers included).
``on_change`` reports each change (the ``opthub_runner_docker_up`` metric).

``wait_for_docker`` is the same patience at start: a runner started while
its daemon restarts waits for it (``patience`` seconds) instead of exiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ...errors import FatalError

log = logging.getLogger(__name__)

#: First and longest pause between two pings of a daemon that went away (seconds).
FIRST_PAUSE = 0.5
LONGEST_PAUSE = 15.0

T = TypeVar("T")


def next_pause(pause: float) -> float:
    """The pause after ``pause``: doubled, up to ``LONGEST_PAUSE``."""
    return min(pause * 2, LONGEST_PAUSE)


class DaemonWatch:
    """Thread-safe; one per executor. ``ping`` raises when the daemon does not answer."""

    def __init__(
        self,
        *,
        ping: Callable[[], object],
        on_back: Callable[[], None],
        on_change: Callable[[bool], None] | None = None,
        first_pause: float = FIRST_PAUSE,
    ) -> None:
        self._ping = ping
        self._on_back = on_back
        self._on_change = on_change
        self._first_pause = first_pause
        self._lock = threading.Lock()
        self._up = True
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def up(self) -> bool:
        """False from a call that found the daemon away until a ping answers again."""
        with self._lock:
            return self._up

    def lost(self, reason: object) -> None:
        """A call found the daemon away: say so once and watch for its return."""
        with self._lock:
            if not self._up or self._closed.is_set():
                return
            self._up = False
            self._thread = threading.Thread(target=self._wait, name="docker-watch", daemon=True)
            self._thread.start()
        log.warning(
            "Docker is not answering (%s): the jobs it ran go back to the queue; waiting for"
            " it to answer again",
            " ".join(str(reason).split())[:300],
        )
        self._report(False)

    def wait_up(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the daemon to answer; whether it does."""
        deadline = time.monotonic() + timeout
        while not self.up:
            if self._closed.is_set() or time.monotonic() >= deadline:
                return self.up
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return True

    def close(self) -> None:
        """Stop watching (the runner stops)."""
        self._closed.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=LONGEST_PAUSE + 5)

    def _wait(self) -> None:
        pause = self._first_pause
        while not self._closed.wait(pause):
            try:
                self._ping()
            except Exception:  # still away: any error of the ping says so
                pause = next_pause(pause)
                continue
            break
        else:
            return
        with self._lock:
            self._up = True
        log.warning("Docker answers again: removing the containers left while it was away")
        self._report(True)
        try:
            self._on_back()
        except Exception:  # the watch must outlive a failed clean-up (the next loss retries)
            log.exception("removing the containers left while Docker was away failed")

    def _report(self, up: bool) -> None:
        if self._on_change is not None:
            try:
                self._on_change(up)
            except Exception:
                log.debug("reporting Docker's state failed", exc_info=True)


def wait_for_docker(
    connect: Callable[[], T],
    *,
    patience: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``connect()``, tried again with a growing pause for up to ``patience`` seconds.

    A daemon that is restarting answers within seconds; one that is not
    installed or refuses the user never does, and the last ``FatalError``
    (the published one-line error) is raised once ``patience`` is spent. A
    permission error is raised at once: waiting cannot mend it.
    """
    deadline = clock() + patience
    pause = FIRST_PAUSE
    said = False
    while True:
        try:
            return connect()
        except FatalError as exc:
            if "permission denied" in str(exc).lower() or clock() + pause > deadline:
                raise
            if not said:
                log.warning(
                    "Docker is not answering; waiting up to %.0f s for it to start", patience
                )
                said = True
        sleep(pause)
        pause = next_pause(pause)
