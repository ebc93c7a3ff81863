"""The queue seam in memory, with SQS's visibility semantics, for tests and the demo.

It is a real ``Queue``: messages stay invisible until their deadline, each
receive raises the receive count and issues a new receipt (older receipts stop
working), an optional redrive limit moves a message to a dead-letter list as
SQS would, and an idle ``receive`` waits on a condition so that it returns as
soon as a message is sent or becomes visible, without polling.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import (
    FALLBACK_GROUP_ID,
    MAX_DELAY_SECONDS,
    MAX_RECEIVE_BATCH,
    MAX_VISIBILITY_SECONDS,
    MAX_WAIT_SECONDS,
    Message,
    MoveProgress,
    QueueInfo,
    QueueStats,
)
from .errors import ReceiptExpired

if TYPE_CHECKING:
    from .base import FleetQueue

log = logging.getLogger(__name__)

#: Visibility timeout reported by ``check`` (SQS's default for a new queue).
DEFAULT_VISIBILITY_TIMEOUT = 30
#: SQS's default MessageRetentionPeriod (4 days), what a queue made without one keeps.
DEFAULT_RETENTION_SECONDS = 4 * 86400

_names = itertools.count(1)


@dataclass
class _Stored:
    """One message and its SQS-like state; mutated only under the queue's lock."""

    message_id: str
    body: str
    visible_at: float
    receive_count: int = 0
    receipt: str | None = None
    received_at: float = 0.0
    group_id: str | None = None
    sent_at: float = 0.0


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, int(value)))


class MemoryQueue:
    """A thread-safe in-process ``Queue``.

    ``max_receive_count`` mimics a redrive policy: a message received that
    many times is moved to the dead-letter list on the next receive instead of
    being delivered. ``fifo`` models an SQS FIFO queue: every message has a
    group, a group's messages are delivered oldest first, and while its oldest
    message is held (or waits out a ``make_visible`` delay) the whole group is held.
    """

    def __init__(
        self,
        *,
        max_receive_count: int | None = None,
        name: str | None = None,
        fifo: bool = False,
        move_tasks: bool = True,
        retention_seconds: int = DEFAULT_RETENTION_SECONDS,
    ):
        self._max_receive_count = max_receive_count
        self._retention_seconds = retention_seconds
        self._fifo = fifo
        self._move_tasks = move_tasks
        base = name or f"queue-{next(_names)}"
        suffix = ".fifo" if fifo else ""
        self._url = f"memory://{base}{suffix}"
        self._condition = threading.Condition()
        self._messages: dict[str, _Stored] = {}
        self._deleted_receipts: set[str] = set()
        self._moves: dict[str, MoveProgress] = {}
        # The redrive policy's target, as SQS would have it: a queue of its own.
        self._dead_letter: MemoryQueue | None = (
            MemoryQueue(name=f"{base}-dlq", fifo=fifo, move_tasks=move_tasks)
            if max_receive_count is not None
            else None
        )

    @property
    def url(self) -> str:
        """A name for logs, shaped like a URL."""
        return self._url

    # --- the Queue protocol -------------------------------------------------

    def check(self) -> QueueInfo:
        """What ``SqsQueue.check`` reports, for wiring that calls it at start-up."""
        return QueueInfo(
            self._url,
            DEFAULT_VISIBILITY_TIMEOUT,
            self._max_receive_count,
            fifo=self._fifo,
            retention_seconds=self._retention_seconds,
        )

    def receive(self, wait_seconds: int, visibility_timeout: int) -> Message | None:
        """Wait up to ``wait_seconds`` for a visible message; hide it for ``visibility_timeout``."""
        messages = self.receive_many(wait_seconds, visibility_timeout, 1)
        return messages[0] if messages else None

    def receive_many(
        self, wait_seconds: int, visibility_timeout: int, max_messages: int
    ) -> list[Message]:
        """As ``receive``, returning up to ``max_messages`` (1..10) of those visible at once."""
        deadline = time.monotonic() + _clamp(wait_seconds, 0, MAX_WAIT_SECONDS)
        wanted = _clamp(max_messages, 1, MAX_RECEIVE_BATCH)
        with self._condition:
            while True:
                now = time.monotonic()
                batch: list[Message] = []
                while len(batch) < wanted:
                    stored = self._next_visible(now)
                    if stored is None:
                        break
                    batch.append(self._deliver(stored, now, visibility_timeout))
                if batch or now >= deadline:
                    return batch
                # Wake at the deadline, when a held message becomes visible, or on a notify.
                wake = min([deadline, *self._hidden_deadlines(now)])
                self._condition.wait(wake - now)

    def delete(self, message: Message) -> None:
        """Remove the message; deleting it twice with the same receipt is harmless, as in SQS."""
        with self._condition:
            if message.receipt in self._deleted_receipts:
                return
            stored = self._held(message)
            del self._messages[stored.message_id]
            self._deleted_receipts.add(message.receipt)
            self._condition.notify_all()  # a FIFO group may be free now

    def extend(self, message: Message, seconds: int) -> None:
        """Hide the message for ``seconds`` from now, within the 12-hour cap from its receipt."""
        with self._condition:
            stored = self._held(message)
            now = time.monotonic()
            seconds = _clamp(seconds, 0, MAX_VISIBILITY_SECONDS)
            if now + seconds - stored.received_at > MAX_VISIBILITY_SECONDS:
                raise self._expired(message, "beyond the 12-hour visibility cap")
            stored.visible_at = now + seconds
            self._condition.notify_all()

    def make_visible(self, message: Message, delay: int = 0) -> None:
        """Make the message visible to every consumer after ``delay`` seconds."""
        with self._condition:
            stored = self._held(message)
            stored.visible_at = time.monotonic() + _clamp(delay, 0, MAX_VISIBILITY_SECONDS)
            self._condition.notify_all()

    def resend(self, message: Message, body: str, delay: int) -> None:
        """Send a fresh copy (receive count 0) visible after ``delay``, then delete the original.

        On a FIFO queue the copy joins the end of the original's group at once
        (FIFO refuses per-message delays).
        """
        if self._fifo:
            self.send(body, group_id=message.group_id or FALLBACK_GROUP_ID)
        else:
            self.send(body, delay=_clamp(delay, 0, MAX_DELAY_SECONDS))
        self.delete(message)

    # --- the fleet's view (FleetQueue) -----------------------------------------

    def stats(self) -> QueueStats:
        """The counts SQS would report, the oldest message's age, the dead-letter count."""
        now = time.monotonic()
        with self._condition:
            oldest = min((m.sent_at for m in self._messages.values()), default=None)
        dead_letter = self._dead_letter
        return QueueStats(
            url=self._url,
            visible=self.visible_count(),
            in_flight=self.in_flight_count(),
            delayed=self.delayed_count(),
            oldest_age=None if oldest is None else now - oldest,
            dead_letter_url=dead_letter.url if dead_letter is not None else None,
            dead_letters=len(dead_letter.bodies()) if dead_letter is not None else None,
            retention_seconds=self._retention_seconds,
        )

    def dead_letter_queue(self) -> MemoryQueue | None:
        """Where messages over the redrive limit go (None without a limit)."""
        return self._dead_letter

    def start_move(self, destination: FleetQueue) -> str | None:
        """Move every message to ``destination`` at once, as SQS's task would (None if disabled).

        Each copy is sent before the original is removed, so none is lost if
        the destination refuses one.
        """
        if not self._move_tasks:
            return None
        handle = uuid.uuid4().hex
        moved = 0
        with self._condition:
            stored = list(self._messages.values())
        for message in stored:
            destination.send(message.body, group_id=message.group_id)
            with self._condition:
                self._messages.pop(message.message_id, None)
            moved += 1
        self._moves[handle] = MoveProgress(moved=moved, to_move=len(stored), finished=True)
        return handle

    def move_progress(self, handle: str) -> MoveProgress:
        """The outcome of a ``start_move`` (which finishes before it returns)."""
        return self._moves[handle]

    def send(self, body: str, delay: int = 0, *, group_id: str | None = None) -> str:
        """Add a message visible after ``delay`` seconds; return its id.

        A FIFO queue needs ``group_id`` and refuses ``delay``, as SQS does.
        """
        if self._fifo and (group_id is None or delay):
            raise ValueError("a FIFO queue needs a group id and takes no per-message delay")
        stored = _Stored(
            message_id=str(uuid.uuid4()),
            body=body,
            visible_at=time.monotonic() + delay,
            group_id=group_id if self._fifo else None,
            sent_at=time.monotonic(),
        )
        with self._condition:
            self._messages[stored.message_id] = stored
            self._condition.notify_all()
        return stored.message_id

    def visible_count(self) -> int:
        """Messages a receive could return now."""
        now = time.monotonic()
        with self._condition:
            return sum(1 for m in self._messages.values() if m.visible_at <= now)

    def in_flight_count(self) -> int:
        """Messages received and still hidden (held, or made visible with a delay still to run)."""
        now = time.monotonic()
        with self._condition:
            return sum(1 for m in self._messages.values() if m.receive_count and m.visible_at > now)

    def delayed_count(self) -> int:
        """Messages sent with a delay that has not passed yet and never received."""
        now = time.monotonic()
        with self._condition:
            return sum(
                1 for m in self._messages.values() if not m.receive_count and m.visible_at > now
            )

    def bodies(self) -> list[str]:
        """Bodies of every message still in the queue, visible or not, oldest first."""
        with self._condition:
            return [m.body for m in self._messages.values()]

    def dead_letter_bodies(self) -> list[str]:
        """Bodies the redrive limit moved out of the queue, oldest first."""
        return self._dead_letter.bodies() if self._dead_letter is not None else []

    # --- internals (call with the lock held) --------------------------------

    def _next_visible(self, now: float) -> _Stored | None:
        """The oldest visible message, moving those over the redrive limit out first.

        On a FIFO queue only the oldest message of each group may be delivered,
        and not while it is hidden: a held group delivers nothing.
        """
        groups_seen: set[str | None] = set()
        for stored in list(self._messages.values()):
            if self._fifo:
                if stored.group_id in groups_seen:
                    continue
                groups_seen.add(stored.group_id)
            if stored.visible_at > now:
                continue
            limit = self._max_receive_count
            if limit is not None and stored.receive_count >= limit:
                del self._messages[stored.message_id]
                if self._dead_letter is not None:
                    self._dead_letter.send(stored.body, group_id=stored.group_id)
                log.info("message %s moved to the dead-letter list", stored.message_id)
                groups_seen.discard(stored.group_id)  # the next of its group is the head now
                continue
            return stored
        return None

    def _hidden_deadlines(self, now: float) -> list[float]:
        return [m.visible_at for m in self._messages.values() if m.visible_at > now]

    def _deliver(self, stored: _Stored, now: float, visibility_timeout: int) -> Message:
        stored.receive_count += 1
        stored.receipt = uuid.uuid4().hex
        stored.received_at = now
        stored.visible_at = now + _clamp(visibility_timeout, 0, MAX_VISIBILITY_SECONDS)
        return Message(
            message_id=stored.message_id,
            body=stored.body,
            receipt=stored.receipt,
            receive_count=stored.receive_count,
            received_at=now,
            group_id=stored.group_id,
        )

    def _held(self, message: Message) -> _Stored:
        """The stored message when ``message.receipt`` is its latest receipt."""
        stored = self._messages.get(message.message_id)
        if stored is None:
            raise self._expired(message, "the message was deleted")
        if stored.receipt != message.receipt:
            raise self._expired(message, "the message was received again since")
        return stored

    def _expired(self, message: Message, why: str) -> ReceiptExpired:
        log.warning(
            "message %s is no longer held by this runner (%s): another consumer may have it",
            message.message_id,
            why,
        )
        return ReceiptExpired(f"receipt of message {message.message_id} is no longer valid: {why}")
