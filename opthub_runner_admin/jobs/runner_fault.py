"""Telling a fault of the runner's own machine from an error tied to one message.

An unexpected error is settled as the participant's Failed item after a few
receives (``TrialJob.unexpected``): that keeps a message that breaks the
runner from looping forever. But a full or read-only disk, a removed
directory, a file the runner cannot open, hits every message alike; settling
those as Failed would fail every trial in the queue within three receives,
and the flag item would then keep the later, correct result out.

So an error counts as the runner's when it is an ``OSError`` (the runner's
own files: the jobs reach the table, the API and Docker only through seams
that raise ``TransientError``/``AdminError``), an ``sqlite3.OperationalError``
(a local database file), or the same exception type and text met for
messages of two different participants or matches within ``WINDOW`` seconds.

Design of the receive bound: SQS's ``ApproximateReceiveCount`` cannot be
un-spent, so a runner fault hands back a FRESH COPY of the message (receive
count 0, as for deliberate retries) instead of releasing it; the 3-receive
bound that leads to a Failed item therefore counts only errors tied to the
message itself. The first message to meet a new non-``OSError`` error spends
one receive before a second participant's message shows the error is shared;
at most that one, since its next receive meets the error as the runner's.
Exactly-once results are untouched: the copy and a stray original are both
guarded by the flag-item transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

from .outcome import Cause

#: The runner's own machine (its disk, its files): every message would meet it.
RUNNER = Cause("runner", shared=True)
#: Seconds an error's signature is remembered to find it met by another participant.
WINDOW = 600.0


def signature(exc: BaseException) -> str:
    """What two errors must share to be the same fault."""
    return f"{type(exc).__name__}: {exc}"


class RunnerFaults:
    """Recent error signatures and the participants that met them; thread-safe."""

    def __init__(
        self, *, window: float = WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        #: signature -> {group (match, participant) -> last seen}
        self._seen: dict[str, dict[tuple[str, str], float]] = {}
        #: Signatures already told to the administrator as the runner's, and when.
        self._told: dict[str, float] = {}

    def is_runners(self, exc: BaseException, group: tuple[str, str]) -> bool:
        """Whether ``exc``, met by a message of ``group``, is a fault of the runner's machine."""
        if isinstance(exc, (OSError, sqlite3.OperationalError)):
            return True
        key = signature(exc)
        now = self._clock()
        with self._lock:
            for sig in [
                s for s, groups in self._seen.items() if _forget(groups, now, self._window)
            ]:
                del self._seen[sig]
            groups = self._seen.setdefault(key, {})
            groups[group] = now
            return len(groups) > 1

    def first_telling(self, exc: BaseException) -> bool:
        """True once per fault (per ``WINDOW``): the administrator is told once, not per message."""
        key = signature(exc)
        now = self._clock()
        with self._lock:
            told = self._told.get(key)
            if told is not None and now - told < self._window:
                return False
            self._told[key] = now
            return True


def _forget(groups: dict[tuple[str, str], float], now: float, window: float) -> bool:
    """Drop the groups seen longer than ``window`` ago; True when none is left."""
    for group in [g for g, seen in groups.items() if now - seen > window]:
        del groups[group]
    return not groups
