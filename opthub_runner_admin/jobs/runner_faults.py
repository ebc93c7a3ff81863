"""Telling a fault of the runner's own machine from an error tied to one message.

An unexpected error is settled as the participant's Failed result after a
few receives, which protects the queue from a message that breaks the
runner. An error of the runner's machine (a full or read-only disk, a file
it cannot open) hits every message alike, and must never become a Failed
result: it is an ``OSError`` of a file or of the machine's resources, an
``sqlite3.OperationalError`` (the runner's own database files), or
the same error (type and text) met for trials of different participants or
matches within a window. Those messages go back unspent while the runner
backs off, as from Docker or AWS trouble.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections.abc import Callable

from ..model import TrialRef

#: Seconds within which the same error for two participants shows a fault of the runner.
SAME_ERROR_WINDOW = 600.0
#: Error numbers of the machine's own resources, whatever the file.
MACHINE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.EIO,
        errno.EACCES,
        errno.EPERM,
    }
)
#: Distinct errors remembered at most (a runner meeting many never grows without bound).
MAX_REMEMBERED = 256


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class RunnerFaults:
    """Thread-safe memory of recent unexpected errors and whose trials met them."""

    def __init__(
        self, *, window: float = SAME_ERROR_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        #: error text -> (match, participant) -> when last met
        self._seen: dict[str, dict[tuple[str, str], float]] = {}

    def of_the_runner(self, exc: BaseException, ref: TrialRef) -> bool:
        """Whether ``exc``, met on ``ref``, is the runner's own fault rather than the message's."""
        if isinstance(exc, OSError) and (exc.filename is not None or exc.errno in MACHINE_ERRNOS):
            return True
        if isinstance(exc, sqlite3.OperationalError):
            # The runner's only SQLite files are its own (the history cache): "database
            # or disk is full", "attempt to write a readonly database", "unable to open".
            return True
        text = error_text(exc)
        owner = (ref.match_id, ref.participant_id)
        now = self._clock()
        with self._lock:
            owners = {
                who: when
                for who, when in self._seen.pop(text, {}).items()
                if now - when <= self._window
            }
            shared = any(who != owner for who in owners)
            owners[owner] = now
            self._seen[text] = owners
            while len(self._seen) > MAX_REMEMBERED:
                del self._seen[next(iter(self._seen))]
        return shared
