"""The queue seam: what the worker needs from SQS, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: SQS's longest long poll.
MAX_WAIT_SECONDS = 20
#: SQS's longest visibility timeout, and its cap on a message's total
#: invisibility counted from its receipt.
MAX_VISIBILITY_SECONDS = 43200
#: SQS's longest per-message delay.
MAX_DELAY_SECONDS = 900
#: SQS hands out at most this many messages per receive (``receive_many``'s bound).
MAX_RECEIVE_BATCH = 10
#: Group of a copy resent on a FIFO queue when the original's group id was not received.
FALLBACK_GROUP_ID = "opthub-runner"


@dataclass(frozen=True)
class Message:
    """One received message.

    ``received_at`` is ``time.monotonic()`` at receipt: SQS caps a message's
    total invisibility at 12 hours from its receipt, so the worker needs it to
    bound how long a job may run. ``receive_count`` is SQS's
    ApproximateReceiveCount, used to bound retries of a message that can never
    succeed. ``group_id`` is a FIFO queue's MessageGroupId (None on a standard
    queue): a resent copy must carry it to stay in its group.
    """

    message_id: str
    body: str
    receipt: str
    receive_count: int
    received_at: float
    group_id: str | None = None


@dataclass(frozen=True)
class QueueInfo:
    """What a start-up check learns about a queue.

    ``max_receive_count`` is the redrive policy's limit (None when the queue
    has no dead-letter queue): a runner warns at start when its own bounded
    ``make_visible`` retries could reach it.
    """

    url: str
    visibility_timeout: int
    max_receive_count: int | None
    #: A FIFO queue: sends need a MessageGroupId and refuse per-message delays.
    fifo: bool = False
    #: MessageRetentionPeriod: seconds SQS keeps a message before deleting it (None: unknown).
    retention_seconds: int | None = None


@dataclass(frozen=True)
class QueueStats:
    """What every runner on every host shares about one queue, at one instant.

    The counts are SQS's approximate ones. ``oldest_age`` is the age in
    seconds of the oldest message (None when the endpoint cannot tell: on
    AWS it is a CloudWatch metric, not a queue attribute). ``dead_letters``
    counts the messages of the dead-letter queue named by the redrive policy
    (None when the queue has none).
    """

    url: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age: float | None = None
    dead_letter_url: str | None = None
    dead_letters: int | None = None
    #: MessageRetentionPeriod: seconds SQS keeps a message before deleting it (None: unknown).
    retention_seconds: int | None = None

    @property
    def retention_left(self) -> float | None:
        """Seconds before SQS deletes the oldest message (None when its age is unknown)."""
        if self.oldest_age is None or self.retention_seconds is None or not self.total:
            return None
        return max(0.0, self.retention_seconds - self.oldest_age)

    @property
    def total(self) -> int:
        """Messages in the queue, visible, held or delayed."""
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True)
class MoveProgress:
    """Where a message-move task stands: moved so far, to move, and whether it ended.

    ``failure`` is the endpoint's reason when the task stopped short.
    """

    moved: int
    to_move: int | None
    finished: bool
    failure: str | None = None


class Queue(Protocol):
    """A queue whose messages stay invisible to others while one consumer holds them.

    Implementations translate transport errors into ``errors.TransientError``.
    """

    def receive(self, wait_seconds: int, visibility_timeout: int) -> Message | None:
        """Long-poll for up to ``wait_seconds``; return at most one message or None."""
        ...

    def receive_many(
        self, wait_seconds: int, visibility_timeout: int, max_messages: int
    ) -> list[Message]:
        """Long-poll as ``receive`` does; return up to ``max_messages`` (1..MAX_RECEIVE_BATCH).

        Returns as soon as any message is there: the batch is what was
        available, not a wait for ``max_messages``.
        """
        ...

    def delete(self, message: Message) -> None:
        """The job is finished: remove the message for good."""
        ...

    def extend(self, message: Message, seconds: int) -> None:
        """Keep the message invisible for ``seconds`` from now (a heartbeat)."""
        ...

    def make_visible(self, message: Message, delay: int = 0) -> None:
        """The same message, visible to every consumer again after ``delay`` seconds (0: now).

        Its receive count keeps rising: this counts toward the dead-letter queue.
        """
        ...

    def resend(self, message: Message, body: str, delay: int) -> None:
        """Replace the message by a fresh copy with ``body``, visible after ``delay`` seconds.

        Unlike ``make_visible`` this resets the receive count, so that putting a
        message back on purpose, again and again, never sends it to the
        dead-letter queue. The copy is sent before the original is deleted: a
        crash in between leaves a duplicate, which the flag item makes harmless.
        On a FIFO queue the copy joins the end of the original's message group
        with a fresh deduplication id, at once: FIFO queues refuse per-message
        delays, so ``delay`` is not applied there.
        """
        ...


class FleetQueue(Queue, Protocol):
    """A queue as the fleet commands see it: its shared state and its dead-letter queue.

    Separate from ``Queue`` because a runner needs none of it: ``status`` and
    ``dlq`` use it, the worker never does.
    """

    @property
    def url(self) -> str:
        """The queue's URL (a name shaped like one, in memory)."""
        ...

    def stats(self) -> QueueStats:
        """The counts every runner shares, and those of the dead-letter queue."""
        ...

    def dead_letter_queue(self) -> FleetQueue | None:
        """The queue the redrive policy sends messages to after too many receives, if any."""
        ...

    def send(self, body: str, *, group_id: str | None = None) -> str:
        """Send a new message, visible at once; return its id.

        On a FIFO queue give ``group_id`` (the message's own, so that it keeps
        its place among its group); each send gets a fresh deduplication id,
        so that a body sent again within five minutes is not dropped.
        """
        ...

    def start_move(self, destination: FleetQueue) -> str | None:
        """Start the endpoint's own task moving every message of this queue to ``destination``.

        Returns the task's handle, or None when the endpoint has no such task
        (then the caller moves messages one by one: receive, send, delete).
        """
        ...

    def move_progress(self, handle: str) -> MoveProgress:
        """Where the task ``handle`` started by ``start_move`` stands."""
        ...
