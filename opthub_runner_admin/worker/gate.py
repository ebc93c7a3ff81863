"""Which held message may start: the per-group cap and the order within a group.

The worker holds up to ``workers`` messages; each either runs or waits here.
A message waits while its group (a participant, to the job) has ``cap`` jobs
running, or, when it has a position (the scorer's trial number), while an
earlier or equal position of its group is held. At most one message per
group waits, the earliest: a participant's burst holds at most ``cap + 1``
slots, and every other message that cannot start goes back to the queue
(the worker sends it back with a short delay) instead of taking a slot from
the other participants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from ..jobs.admission import Admission


class Gated(Protocol):
    @property
    def admission(self) -> Admission: ...


T = TypeVar("T", bound=Gated)


@dataclass
class Decision(Generic[T]):
    """``start``: the offered message runs now. ``back``: messages to send back to the queue."""

    start: bool
    back: list[T] = field(default_factory=list)


class Gate(Generic[T]):
    """Running and waiting messages by group; not thread-safe (the worker holds its lock)."""

    def __init__(self, *, max_per_group: int | None = None) -> None:
        if max_per_group is not None and max_per_group < 1:
            raise ValueError(f"max_per_group must be at least 1, got {max_per_group}")
        self._cap = max_per_group
        self._running: dict[str, list[T]] = {}
        self._waiting: dict[str, T] = {}

    def offer(self, item: T) -> Decision[T]:
        """Start ``item``, let it wait, or send it (or the waiter it displaces) back."""
        group = item.admission.group
        if group is None or self._may_start(item, group):
            if group is not None:
                self._running.setdefault(group, []).append(item)
            return Decision(start=True)
        current = self._waiting.get(group)
        if current is None:
            self._waiting[group] = item
            return Decision(start=False)
        if _before(item, current):
            self._waiting[group] = item
            return Decision(start=False, back=[current])
        return Decision(start=False, back=[item])

    def finished(self, item: T) -> list[T]:
        """``item`` no longer runs; returns the waiter that may start now, if any."""
        group = item.admission.group
        if group is None:
            return []
        running = self._running.get(group, [])
        if item in running:
            running.remove(item)
        if not running:
            self._running.pop(group, None)
        waiter = self._waiting.get(group)
        if waiter is None or not self._may_start(waiter, group):
            return []
        del self._waiting[group]
        self._running.setdefault(group, []).append(waiter)
        return [waiter]

    def take_waiting(self) -> list[T]:
        """Remove and return every waiting message (the worker is stopping)."""
        waiting = list(self._waiting.values())
        self._waiting.clear()
        return waiting

    def _may_start(self, item: T, group: str) -> bool:
        running = self._running.get(group, [])
        if self._cap is not None and len(running) >= self._cap:
            return False
        position = item.admission.position
        if position is None:
            return True
        held = [*running]
        waiter = self._waiting.get(group)
        if waiter is not None and waiter is not item:
            held.append(waiter)
        return not any(_at_or_before(other, position) for other in held)


def _at_or_before(item: Gated, position: int) -> bool:
    other = item.admission.position
    return other is not None and other <= position


def _before(item: Gated, other: Gated) -> bool:
    """Whether ``item`` comes strictly before ``other`` in their group's order."""
    a, b = item.admission.position, other.admission.position
    return a is not None and b is not None and a < b
