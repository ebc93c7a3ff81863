"""Containers started ahead of their job, so that Docker's start-up overlaps the runner's work.

Starting a container (network namespace, runtime, mounts) is most of a
short job's cost. While the runner writes one result, deletes its message,
takes the next one and reads its solution, a container for the next job of
the same kind (same image, image id, environment and command: what makes
two containers interchangeable, and what consecutive trials of one match
share) is created, attached and started in the background. It then waits on
its stdin, which only the job writes: the job's own input reaches it exactly
as in a cold start, and its timeout runs from that moment. Once a key is
known to start, the next container is started as soon as a job takes the
warm one, so that its start overlaps the job's own run as well.

Containers are kept per key, so that two or three matches whose jobs
alternate each find theirs. Each key keeps as many as its jobs ran at once.
A key run one at a time keeps one more while its jobs keep finding theirs:
Docker takes longer to start a container than a short job runs, so with one
container on its way the next job waits for the rest of its start, while two
on their way overlap their starts (measured: 3.9 to 4.0 against 4.8 to 5.0
trivial jobs a second with one worker, back to back). A key run several at
once already has as many starts overlapping, and an extra one there would
only be one more container left unused when its jobs stop coming.

What this may waste is bounded. The pool holds at most as many containers
as runs seen at once plus ``SPARE_KEYS``; a key's first container makes room
by removing ONE container of another key (an extra one first, else one of
the key seen longest ago), a key's extra one never removes anything: a switch of
match costs at most one start. A key whose jobs have not been seen for
``IDLE_AFTER`` seconds loses its containers (a match that ended). While the
runner takes no new job (paused, or its login waits), ``stand_by`` removes
them all and none is started until it ends. ``close``
removes them all at the runner's stop; a crashed runner's are reaped at the
next start by their pid label like any other container. ``counts`` says
what was started, reused and removed unused (the benchmark and tests read it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

from .streams import Attachment

log = logging.getLogger(__name__)

#: Longest wait for a container being started ahead before the job starts its own.
PREPARE_WAIT = 30.0
#: Jobs in a row of one key that found their container before it keeps one more on its way.
HITS_FOR_ONE_MORE = 2
#: Containers the pool may hold beyond the most runs seen at once (other keys' spares).
SPARE_KEYS = 2
#: Seconds after which the containers of a key whose jobs stopped coming are removed.
IDLE_AFTER = 60.0


@dataclass
class LiveContainer:
    """A created container with its attachment open; ``started`` once Docker started it."""

    name: str
    attachment: Attachment
    started: bool = False
    #: Docker's id of it (its cgroup is named by it).
    container_id: str = ""


@dataclass(frozen=True)
class WarmCounts:
    """What the pool did, since it was made."""

    #: Containers started ahead (successfully).
    started: int = 0
    #: Of those, taken by a job.
    reused: int = 0
    #: Removed to make room for another key's first container.
    evicted: int = 0
    #: Removed because their key was not seen for ``IDLE_AFTER`` seconds.
    expired: int = 0
    #: Removed at ``close`` (the runner's stop).
    closed: int = 0
    #: Removed because the runner took no new job (``stand_by``: paused, login needed).
    stood_down: int = 0
    #: Removed once Docker answered again after an outage (a restart killed them).
    outage: int = 0


@dataclass
class _Ready:
    key: Hashable
    container: LiveContainer


class WarmPool:
    """Started containers waiting for a job with the same key; thread-safe."""

    def __init__(
        self,
        *,
        discard: Callable[[LiveContainer], None],
        idle_after: float = IDLE_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._discard = discard
        self._idle_after = idle_after
        self._clock = clock
        self._lock = threading.Lock()
        #: Oldest first.
        self._ready: list[_Ready] = []
        #: Keys being started now; the condition is notified when one is ready (or failed).
        self._preparing: list[Hashable] = []
        #: Jobs waiting in ``take``, per key, in arrival order: each claims one container.
        self._waiting: dict[Hashable, list[object]] = {}
        self._changed = threading.Condition(self._lock)
        #: Most runs seen at once, in all and per key.
        self._peak = 1
        self._peak_of: dict[Hashable, int] = {}
        #: Jobs in a row of each key that found a container of their key.
        self._hits: dict[Hashable, int] = {}
        #: When a job of each key was last seen.
        self._seen: dict[Hashable, float] = {}
        self._counts = WarmCounts()
        self._closed = False
        self._standing_by = False
        self._threads: list[threading.Thread] = []
        self._sweeper: threading.Thread | None = None

    @property
    def counts(self) -> WarmCounts:
        with self._lock:
            return self._counts

    def take(self, key: Hashable) -> LiveContainer | None:
        """A started container for ``key``, or None.

        A container for ``key`` still starting is waited for: it will be ready
        sooner than a new one, which would also compete with it for the CPU.
        But each container serves one job: the n-th job waiting for ``key``
        waits only while an n-th one is on its way, so that concurrent jobs
        do not queue one behind another for a single container started ahead.
        """
        me = object()
        with self._lock:
            self._seen[key] = self._clock()
            waiting = self._waiting.setdefault(key, [])
            waiting.append(me)
            try:
                self._changed.wait_for(
                    lambda: self._may_go(key, waiting.index(me)), timeout=PREPARE_WAIT
                )
            finally:
                waiting.remove(me)
                if not waiting:
                    del self._waiting[key]
            found = next((r for r in self._ready if r.key == key), None)
            if found is not None:
                self._ready.remove(found)
                self._counts = replace(self._counts, reused=self._counts.reused + 1)
                self._hits[key] = self._hits.get(key, 0) + 1
            else:
                self._hits[key] = 0
            stale = self._expire()
        self._discard_all(stale, "its match's jobs stopped coming")
        return found.container if found is not None else None

    def _may_go(self, key: Hashable, place: int) -> bool:
        """Whether the job at ``place`` among those waiting for ``key`` stops waiting (lock held).

        It goes when a ready container is there for it, or when no container
        being started is left for it (the ones before it claim theirs first).
        """
        ready = sum(1 for r in self._ready if r.key == key)
        return ready > place or self._preparing.count(key) + ready <= place

    def fit(self, key: Hashable, runs_of_key: int, runs: int) -> None:
        """Record the runs now going on, of ``key`` and in all (the pool's bounds follow)."""
        with self._lock:
            self._peak = max(self._peak, runs)
            self._peak_of[key] = max(self._peak_of.get(key, 1), runs_of_key)

    def prepare(self, key: Hashable, make: Callable[[], LiveContainer]) -> None:
        """Start a container for ``key`` in the background, if the bounds allow it."""
        with self._lock:
            self._seen[key] = self._clock()
            stale = self._expire()
            evicted = self._room_for(key)
            if evicted is not False:
                self._preparing.append(key)
                thread = threading.Thread(
                    target=self._prepare, args=(key, make), name="docker-prestart", daemon=True
                )
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()  # under the lock: close() must see and join it
                self._start_sweeper()
        self._discard_all(stale, "its match's jobs stopped coming")
        if isinstance(evicted, LiveContainer):
            self._discard_all([evicted], "another match's job needs the room")

    def _room_for(self, key: Hashable) -> LiveContainer | bool | None:
        """False: no start for ``key``; else the start goes, after removing what is returned.

        Lock held.
        """
        if self._closed or self._standing_by:
            return False
        mine = self._preparing.count(key) + sum(1 for r in self._ready if r.key == key)
        peak = self._peak_of.get(key, 1)
        # Several runs at once already overlap their containers' starts: an extra
        # one there is only one more start left unused when the jobs stop coming.
        one_more = 1 if peak == 1 and self._hits.get(key, 0) >= HITS_FOR_ONE_MORE else 0
        if mine >= peak + one_more:
            return False
        if len(self._preparing) + len(self._ready) < self._peak + SPARE_KEYS:
            return None
        if mine > 0 or not self._ready:
            return False  # an extra one never removes another key's
        per_key: dict[Hashable, int] = {}
        for r in self._ready:
            per_key[r.key] = per_key.get(r.key, 0) + 1
        # An extra container of another key first, else one of the key seen longest ago.
        extras = [r for r in self._ready if per_key[r.key] > 1]
        victim = min(extras or self._ready, key=lambda r: self._seen.get(r.key, 0.0))
        self._ready.remove(victim)
        self._counts = replace(self._counts, evicted=self._counts.evicted + 1)
        return victim.container

    def _expire(self) -> list[LiveContainer]:
        """Take out the containers of keys not seen for ``idle_after`` seconds (lock held)."""
        now = self._clock()
        idle = {k for k, seen in self._seen.items() if now - seen >= self._idle_after}
        if not idle:
            return []
        stale = [r.container for r in self._ready if r.key in idle]
        self._ready = [r for r in self._ready if r.key not in idle]
        for key in idle - set(self._preparing) - set(self._waiting):
            del self._seen[key]
            self._hits.pop(key, None)
            self._peak_of.pop(key, None)
        self._counts = replace(self._counts, expired=self._counts.expired + len(stale))
        return stale

    def sweep(self) -> None:
        """Remove the containers of keys not seen for a while (an idle runner calls it too)."""
        with self._lock:
            stale = self._expire()
        self._discard_all(stale, "its match's jobs stopped coming")

    def _start_sweeper(self) -> None:
        """A thread that sweeps while no job comes (lock held; at most one)."""
        if self._sweeper is None:
            self._sweeper = threading.Thread(
                target=self._sweep_until_closed, name="docker-prestart-sweep", daemon=True
            )
            self._sweeper.start()

    def _sweep_until_closed(self) -> None:
        while True:
            with self._lock:
                self._changed.wait_for(lambda: self._closed, timeout=self._idle_after / 2)
                if self._closed:
                    return
            self.sweep()

    def _prepare(self, key: Hashable, make: Callable[[], LiveContainer]) -> None:
        container: LiveContainer | None = None
        try:
            container = make()
        except Exception as exc:  # the job will start its own container and meet the error
            log.debug("could not start a container ahead: %s", exc)
        with self._lock:
            self._preparing.remove(key)
            self._changed.notify_all()
            keep = container is not None and not self._closed and not self._standing_by
            if container is not None:
                self._counts = replace(self._counts, started=self._counts.started + 1)
                if keep:
                    self._ready.append(_Ready(key, container))
                elif self._closed:
                    self._counts = replace(self._counts, closed=self._counts.closed + 1)
                else:
                    self._counts = replace(self._counts, stood_down=self._counts.stood_down + 1)
        if container is not None and not keep:
            self._discard(container)

    def _discard_all(self, containers: list[LiveContainer], why: str) -> None:
        for container in containers:
            log.debug("removing warm container %s: %s", container.name, why)
            self._discard(container)

    def stand_by(self, on: bool) -> None:
        """``on``: remove every waiting container and start none until ``stand_by(False)``.

        A container being started now is removed once it is (``_prepare``).
        """
        with self._lock:
            self._standing_by = on
            ready = [] if not on else [r.container for r in self._ready]
            if on:
                self._ready = []
                self._counts = replace(
                    self._counts, stood_down=self._counts.stood_down + len(ready)
                )
            self._changed.notify_all()
        self._discard_all(ready, "the runner takes no new job now")

    def clear(self) -> None:
        """Discard the started containers now waiting (Docker came back from an outage)."""
        with self._lock:
            ready, self._ready = self._ready, []
            self._counts = replace(self._counts, outage=self._counts.outage + len(ready))
        self._discard_all([r.container for r in ready], "Docker was away (restarted)")

    def close(self) -> None:
        """Discard every warm container, waiting for those being started."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            threads = list(self._threads)
            sweeper = self._sweeper
        for thread in threads:
            thread.join()
        if sweeper is not None:
            sweeper.join()
        with self._lock:
            ready, self._ready = self._ready, []
            self._counts = replace(self._counts, closed=self._counts.closed + len(ready))
        self._discard_all([r.container for r in ready], "the runner stops")
