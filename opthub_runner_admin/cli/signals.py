"""Process control of a runner: its signal handlers, and signalling another runner to stop.

A runner drains on the first SIGINT or SIGTERM and cancels its running jobs
on the second; ``stop`` sends the same signals, so that both paths are one.
SIGUSR1 pauses it (no new job; the running ones finish) and SIGUSR2 resumes
it; ``pause`` and ``resume`` send them, and so may ``systemctl kill -s``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from types import FrameType

from ..observe.holds import PAUSED
from ..worker import Worker
from ..worker.hold import Holds

log = logging.getLogger("opthub_runner_admin")

#: ``opthub-runner pause`` (or ``systemctl kill -s SIGUSR1``): take no new job.
PAUSE_SIGNAL = signal.SIGUSR1
#: ``opthub-runner resume`` (or ``systemctl kill -s SIGUSR2``): take jobs again.
RESUME_SIGNAL = signal.SIGUSR2
#: What the pause says in the log, the status line, the page and ``/healthz``.
PAUSE_DETAIL = "the running jobs finish; opthub-runner resume takes jobs again"


def install_signal_handlers(worker: Worker) -> None:
    """First SIGINT/SIGTERM drains, the second cancels the running job.

    The handler runs on the main thread wherever it was interrupted, possibly
    inside the worker's own locked section; ``stop()`` runs in a thread of its
    own so that it never interleaves with that section.
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        force = worker.stopping
        if force:
            log.warning("%s again: stopping the running jobs now", name)
        else:
            log.warning(
                "%s: finishing the running jobs, then exiting (again to stop them now)", name
            )
        threading.Thread(target=worker.stop, kwargs={"force": force}, name="stop").start()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def signal_runner(pid: int, *, twice: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        if twice:
            # The second signal must arrive after the first has been handled.
            time.sleep(0.5)
            os.kill(pid, signal.SIGTERM)


def install_pause_handlers(holds: Holds) -> None:
    """SIGUSR1 pauses, SIGUSR2 resumes; a thread changes the holds (their lock is no RLock)."""

    def pause(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=holds.hold, args=(PAUSED, PAUSE_DETAIL), name="pause").start()

    def resume(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=holds.release, args=(PAUSED,), name="resume").start()

    signal.signal(PAUSE_SIGNAL, pause)
    signal.signal(RESUME_SIGNAL, resume)
