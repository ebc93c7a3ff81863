"""The worker's holds: reasons that stop it taking new jobs while the running ones go on.

One concept for every such reason: the operator's pause, a login that waits
for the password, and any later one (Docker away). While any hold is on, the
worker receives nothing, gives back the messages that wait for their turn and
those a long poll still brings, and starts no waiter of a finished job's
group; the running jobs finish (or go back on their own errors). Each change
is logged once, told to the observers (status line, page, metrics, healthz)
and to the listeners (the executor drops its containers started ahead; the
pid file says it, for ``opthub-runner status``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from ..observe.events import JobEvents, NoEvents
from ..observe.holds import Hold

log = logging.getLogger(__name__)

#: Told the holds on after every change (empty: none).
HoldListener = Callable[[Mapping[str, Hold]], None]


class Holds:
    """The holds of one runner; thread-safe, quick (listeners are called outside the lock)."""

    def __init__(
        self,
        *,
        name: str = "worker",
        events: JobEvents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._events: JobEvents = events or NoEvents()
        self._clock = clock
        self._lock = threading.Lock()
        self._holds: dict[str, Hold] = {}
        self._listeners: list[HoldListener] = []

    def listen(self, listener: HoldListener) -> None:
        """Call ``listener`` with the holds after every change."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def on(self) -> Mapping[str, Hold]:
        """The holds on now, by reason."""
        with self._lock:
            return MappingProxyType(dict(self._holds))

    def held(self) -> bool:
        with self._lock:
            return bool(self._holds)

    def hold(self, reason: str, detail: str) -> bool:
        """Take no new job for ``reason``; False if it was on already (nothing is said again)."""
        with self._lock:
            if reason in self._holds:
                return False
            self._holds[reason] = Hold(reason=reason, detail=detail, since=self._clock())
        log.warning("%s: %s: no new job is taken (%s)", self._name, reason, detail)
        self._changed()
        return True

    def release(self, reason: str) -> bool:
        """``reason`` holds no longer; False if it was not on."""
        with self._lock:
            hold = self._holds.pop(reason, None)
            if hold is None:
                return False
            others = ", ".join(self._holds)
        if others:
            log.warning("%s: %s no longer; still no new job (%s)", self._name, reason, others)
        else:
            log.warning("%s: %s no longer: taking new jobs again", self._name, reason)
        self._changed()
        return True

    def _changed(self) -> None:
        with self._lock:
            holds = MappingProxyType(dict(self._holds))
            listeners = list(self._listeners)
        self._events.holds_changed(holds)
        for listener in listeners:
            try:
                listener(holds)
            except Exception:  # a listener must not keep the hold from the others
                log.exception("%s: a listener of the holds failed", self._name)
