"""What the worker may know of a message before running it: keys, never item shapes.

The worker runs several jobs at once. Whether a message may start now depends
on what it is (the scorer scores one participant's trials in trial order;
one participant must not take every slot; a broken match should not be tried
again and again), but the worker knows no bodies. The job reads its own body
and answers with opaque keys; the worker only compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..queue import Message


@dataclass(frozen=True)
class Admission:
    """How a message relates to the others this process holds.

    ``group``: messages of one group (a participant) share the per-group cap
    on running jobs. ``position``: when set, a message does not start while
    this process holds a message of its group at the same or an earlier
    position (it waits for it locally). ``causes``: while one of these keys
    backs off (see ``outcome.Cause``), the message goes back without running.
    """

    group: str | None = None
    position: int | None = None
    causes: tuple[str, ...] = ()


#: For messages the job cannot read: no group, no order, no cause (the job drops them).
UNRESTRICTED = Admission()


@runtime_checkable
class Admits(Protocol):
    """A handler that can tell the worker a message's keys before it runs."""

    def admission(self, message: Message, /) -> Admission: ...
