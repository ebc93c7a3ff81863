"""Process control of a runner: its signal handlers, and signalling another runner to stop.

A runner drains on the first SIGINT or SIGTERM and cancels its running jobs
on the second; ``stop`` sends the same signals, so that both paths are one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from types import FrameType

from ..worker import Worker

log = logging.getLogger("opthub_runner_admin")


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
