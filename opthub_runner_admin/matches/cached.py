"""A per-match time-limited cache in front of another match source.

A competition's queue often holds thousands of messages for one match; without
a cache each would cost one API call (and one token check). With it a burst
costs one call per match per ``ttl_seconds``, and concurrent lookups of a
match that is not cached yet share a single call ("single flight") instead of
all missing at once.

Errors are never cached: an API outage or a login fixed by the administrator
should be noticed by the very next lookup. A lookup that was waiting on a
failed call receives the same error, so that an outage costs one call per
burst, not one per waiting worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .base import MatchSource, MatchSpec

log = logging.getLogger(__name__)


@dataclass
class _Flight:
    """One inner lookup in progress; the threads that want its result wait on ``done``."""

    done: threading.Event = field(default_factory=threading.Event)
    spec: MatchSpec | None = None
    error: Exception | None = None


class CachedMatchSource:
    """Caches ``inner.get`` per match for ``ttl_seconds`` (0 disables caching, not sharing).

    ``clock`` is monotonic so that a wall-clock jump cannot keep a stale
    environment forever or expire every entry at once.
    """

    def __init__(
        self,
        inner: MatchSource,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError(f"ttl_seconds must not be negative, got {ttl_seconds}")
        self._inner = inner
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, MatchSpec]] = {}
        self._flights: dict[str, _Flight] = {}

    def get(self, match_id: str) -> MatchSpec:
        """The cached match, or the inner source's answer shared with concurrent callers."""
        while True:
            with self._lock:
                entry = self._entries.get(match_id)
                if entry is not None and self._clock() < entry[0]:
                    return entry[1]
                flight = self._flights.get(match_id)
                leader = flight is None
                if flight is None:
                    flight = self._flights[match_id] = _Flight()
            if leader:
                return self._fetch(match_id, flight)
            spec = self._follow(flight)
            if spec is not None:
                return spec
            # The leader was interrupted (not failed): look the match up afresh.

    def invalidate(self, match_id: str | None = None) -> None:
        """Forget one match (or all): the next lookup asks the inner source again."""
        with self._lock:
            if match_id is None:
                self._entries.clear()
            else:
                self._entries.pop(match_id, None)

    def _fetch(self, match_id: str, flight: _Flight) -> MatchSpec:
        try:
            spec = self._inner.get(match_id)
        except Exception as exc:
            flight.error = exc
            raise
        else:
            flight.spec = spec
            with self._lock:
                if self._ttl > 0:
                    self._entries[match_id] = (self._clock() + self._ttl, spec)
            log.debug("match %s cached for %s s", match_id, self._ttl)
            return spec
        finally:
            with self._lock:
                del self._flights[match_id]
            flight.done.set()

    @staticmethod
    def _follow(flight: _Flight) -> MatchSpec | None:
        """The leader's result or error; None if the leader was interrupted."""
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.spec
