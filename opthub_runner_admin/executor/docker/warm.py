"""Containers started ahead of their job, so that Docker's start-up overlaps the runner's work.

Starting a container (network namespace, runtime, mounts) is most of a
short job's cost. While the runner writes one result, deletes its message,
takes the next one and reads its solution, a container for the next job of
the same kind (same image, image id, environment and command, which is what
consecutive trials of one match share) is created, attached and started in
the background. It then waits on its stdin, which only the job writes: the
job's own input reaches it exactly as in a cold start, and its timeout runs
from that moment. Once a key is known to start, the next container is
started as soon as a job takes the warm one, so that its start overlaps the
job's own run as well.

A warm container that does not fit the next job (another match, an image
pulled or tagged again meanwhile) is removed, never used. The pool holds as
many containers as there were runs at once, and one more while consecutive
jobs keep finding theirs: Docker takes longer to start a container than a
short job runs, so with one container on its way the next job waits for the
rest of its start, while two on their way overlap their starts (measured:
3.9 to 4.0 against 4.8 to 5.0 trivial jobs a second with one worker, back
to back). A job that finds none (another match came, or the first job)
drops the extra one, so that interleaved matches waste one start a job,
not two; the switch after a streak may waste both. ``close`` removes
them at the runner's stop; a crashed runner's are reaped at the next start
by their pid label like any other container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .streams import Attachment

log = logging.getLogger(__name__)

#: Longest wait for a container being started ahead before the job starts its own.
PREPARE_WAIT = 30.0
#: Jobs in a row that found their container before the pool keeps one more on its way.
HITS_FOR_ONE_MORE = 2


@dataclass
class LiveContainer:
    """A created container with its attachment open; ``started`` once Docker started it."""

    name: str
    attachment: Attachment
    started: bool = False


class WarmPool:
    """Started containers waiting for a job with the same key; thread-safe."""

    def __init__(self, *, discard: Callable[[LiveContainer], None]) -> None:
        self._discard = discard
        self._lock = threading.Lock()
        self._ready: list[tuple[Hashable, LiveContainer]] = []
        #: Keys being started now; the condition is notified when one is ready (or failed).
        self._preparing: list[Hashable] = []
        #: Jobs waiting in ``take``, per key, in arrival order: each claims one container.
        self._waiting: dict[Hashable, list[object]] = {}
        self._changed = threading.Condition(self._lock)
        self._capacity = 1
        #: Jobs in a row that found a container of their key.
        self._hits = 0
        self._closed = False
        self._threads: list[threading.Thread] = []

    def take(self, key: Hashable) -> LiveContainer | None:
        """A started container for ``key``, or None; ready ones of other keys are discarded.

        A container for ``key`` still starting is waited for: it will be ready
        sooner than a new one, which would also compete with it for the CPU.
        But each container serves one job: the n-th job waiting for ``key``
        waits only while an n-th one is on its way, so that concurrent jobs
        do not queue one behind another for a single container started ahead.
        """
        me = object()
        with self._lock:
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
            found = next((c for k, c in self._ready if k == key), None)
            stale = [c for k, c in self._ready if k != key]
            self._ready = [(k, c) for k, c in self._ready if c is not found and k == key]
            self._hits = self._hits + 1 if found is not None else 0
        for container in stale:
            log.debug("warm container %s does not fit the job: removing it", container.name)
            self._discard(container)
        return found

    def _may_go(self, key: Hashable, place: int) -> bool:
        """Whether the job at ``place`` among those waiting for ``key`` stops waiting (lock held).

        It goes when a ready container is there for it, or when no container
        being started is left for it (the ones before it claim theirs first).
        """
        ready = sum(1 for k, _ in self._ready if k == key)
        return ready > place or self._preparing.count(key) + ready <= place

    def fit(self, concurrent_runs: int) -> None:
        """Keep up to as many warm containers as runs seen at once (one more on a streak)."""
        with self._lock:
            self._capacity = max(self._capacity, concurrent_runs)

    def prepare(self, key: Hashable, make: Callable[[], LiveContainer]) -> None:
        """Start a container for ``key`` in the background, unless the pool is full or closed."""
        with self._lock:
            # Containers ready for another key make room: the latest job is the best guess.
            stale = [c for k, c in self._ready if k != key]
            self._ready = [(k, c) for k, c in self._ready if k == key]
            one_more = 1 if self._hits >= HITS_FOR_ONE_MORE else 0
            full = len(self._ready) + len(self._preparing) >= self._capacity + one_more
            if not (self._closed or full):
                self._preparing.append(key)
                thread = threading.Thread(
                    target=self._prepare, args=(key, make), name="docker-prestart", daemon=True
                )
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()  # under the lock: close() must see and join it
        for container in stale:
            self._discard(container)

    def _prepare(self, key: Hashable, make: Callable[[], LiveContainer]) -> None:
        container: LiveContainer | None = None
        try:
            container = make()
        except Exception as exc:  # the job will start its own container and meet the error
            log.debug("could not start a container ahead: %s", exc)
        with self._lock:
            self._preparing.remove(key)
            self._changed.notify_all()
            keep = container is not None and not self._closed
            if keep and container is not None:
                self._ready.append((key, container))
        if container is not None and not keep:
            self._discard(container)

    def close(self) -> None:
        """Discard every warm container, waiting for those being started."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        with self._lock:
            ready, self._ready = self._ready, []
        for _, container in ready:
            self._discard(container)
