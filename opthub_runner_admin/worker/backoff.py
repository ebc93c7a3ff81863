"""Backing off per cause: one broken match never slows the others.

A failure is blamed on a cause (``match:<id>``, ``docker``, ``aws``...); the
cause's pause doubles with each failure in a row, up to a maximum, and ends
with a success of work that met it. "In a row" counts the probes: the jobs
that were already running when a cause began backing off all meet the same
fault at once (a Docker restart ends every container together), and each of
their failures doubling the pause would leave a runner idle for minutes
after a fault of seconds; neither does one of them that happened to finish
prove the cause well again. While a cause backs off, messages that
would meet it go back to the queue without running; when its pause is over,
a single message is let through as a probe, and the others wait for the
probe's outcome rather than all failing at once. A probe that runs longer
than its cause's pause (a job of hours) does not hold the others back for
its whole run: after that pause, another probe may go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass
class _State:
    pause: float
    until: float
    #: When this pause began: work started before it says nothing new of the cause.
    since: float
    #: When the probe now out started (None: no probe out).
    probe_since: float | None = None


class Backoffs:
    """The causes backing off now; not thread-safe (the worker holds its lock)."""

    def __init__(
        self, *, initial: float, maximum: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._initial = initial
        self._maximum = maximum
        self._clock = clock
        self._states: dict[str, _State] = {}

    def failed(self, key: str, *, started_at: float | None = None) -> float | None:
        """Work blamed ``key`` for a failure: start or double its pause; return the pause.

        ``started_at`` is when the failed work started (``started``'s answer; None for
        work that is no job, such as a receive). Work that started before the pause now
        running met the fault that pause is for: None, the pause stays as it is.
        """
        now = self._clock()
        state = self._states.get(key)
        if state is not None and started_at is not None and started_at < state.since:
            return None
        pause = self._initial if state is None else min(state.pause * 2, self._maximum)
        self._states[key] = _State(pause=pause, until=now + pause, since=now)
        return pause

    def succeeded(self, keys: Iterable[str], *, started_at: float | None = None) -> list[str]:
        """Work that met ``keys`` succeeded: they no longer back off. Returns those that did.

        Work that started before a key's pause began (``started_at``) ends nothing: it may
        have done with the cause before the fault.
        """
        ended = []
        for key in keys:
            state = self._states.get(key)
            if state is not None and (started_at is None or started_at >= state.since):
                del self._states[key]
                ended.append(key)
        return ended

    def probe_ended(self, keys: Iterable[str], *, started_at: float | None = None) -> None:
        """A probe ended with neither a failure nor a success of its cause: let another through.

        Work that started before a key's probe (``started_at``) was not that probe: the
        probe still runs.
        """
        for key in keys:
            state = self._states.get(key)
            if state is None or state.probe_since is None:
                continue
            if started_at is None or started_at >= state.probe_since:
                state.probe_since = None

    def blocking(self, keys: Iterable[str]) -> tuple[str, float] | None:
        """None when work meeting ``keys`` may run now, else (the blocking key, seconds left).

        A key whose pause is over lets one probe through at a time (see ``started``).
        """
        now = self._clock()
        for key in keys:
            state = self._states.get(key)
            if state is None:
                continue
            if state.until > now:
                return key, state.until - now
            if self._probe_out(state, now):
                return key, state.pause
        return None

    def started(self, keys: Iterable[str]) -> float:
        """Work meeting ``keys`` starts: for a key still backing off it is the probe.

        Returns when it started: the caller reports the work's end with ``failed``,
        ``succeeded`` or ``probe_ended``, giving them that time.
        """
        now = self._clock()
        for key in keys:
            state = self._states.get(key)
            if state is not None and not self._probe_out(state, now):
                state.probe_since = now
        return now

    def probing(self, key: str) -> bool:
        """Whether a probe of ``key`` is out (its pause is over, its outcome not known yet)."""
        state = self._states.get(key)
        return state is not None and self._probe_out(state, self._clock())

    @staticmethod
    def _probe_out(state: _State, now: float) -> bool:
        """A probe is out, and has not yet run longer than the pause it ends."""
        return state.probe_since is not None and now - state.probe_since < state.pause

    def remaining(self, key: str) -> float:
        """Seconds before ``key`` is over its pause (0 when it is not backing off)."""
        state = self._states.get(key)
        return max(0.0, state.until - self._clock()) if state is not None else 0.0
