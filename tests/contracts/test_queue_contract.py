"""One contract for both queues: MemoryQueue, and SqsQueue on moto and on MiniStack.

SqsQueue runs against two emulators written independently of each other (real
servers over HTTP), so that the runner cannot come to lean on one's quirk.

Each queue is built with a redrive limit of 2 receives, so the suite also pins
down the difference between ``make_visible`` (counts toward the dead-letter queue)
and ``resend`` (a fresh message that never does).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from opthub_runner_admin.errors import TransientError
from opthub_runner_admin.fleet.dead_letters import list_lines, peek, redrive
from opthub_runner_admin.platform_side.contract import (
    QUEUE_RETENTION_SECONDS,
    create_queue,
    dead_letter_queue_name,
)
from opthub_runner_admin.platform_side.emulators import EMULATORS, LocalServer
from opthub_runner_admin.queue.base import Message
from opthub_runner_admin.queue.errors import ReceiptExpired
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.queue.sqs import SqsQueue
from tests.support.imports import aws_libraries_imported_by
from tests.support.tiers import using

#: Redrive limit of every queue in this suite.
MAX_RECEIVES = 2


@dataclass(frozen=True)
class QueueHarness:
    """A queue under test and the platform's side of it."""

    queue: MemoryQueue | SqsQueue
    send: Callable[[str], object]
    dead_letters: Callable[[], list[str]]
    #: Messages in the queue, visible, held or delayed.
    size: Callable[[], int]


def _memory() -> QueueHarness:
    queue = MemoryQueue(max_receive_count=MAX_RECEIVES, retention_seconds=QUEUE_RETENTION_SECONDS)
    return QueueHarness(queue, queue.send, queue.dead_letter_bodies, lambda: len(queue.bodies()))


def _sqs(server: LocalServer) -> QueueHarness:
    # Few attempts: moto answers StartMessageMoveTask with HTTP 500 (it has no such task),
    # which botocore would otherwise retry with backoff for seconds.
    clients = server.clients(max_attempts=3)
    name = f"contract-{uuid.uuid4().hex[:10]}"
    url = create_queue(clients.sqs, name, dead_letter_max_receives=MAX_RECEIVES)
    dlq_url = clients.sqs.get_queue_url(QueueName=dead_letter_queue_name(name))["QueueUrl"]

    def send(body: str) -> object:
        return clients.sqs.send_message(QueueUrl=url, MessageBody=body)

    def dead_letters() -> list[str]:
        response = clients.sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [m["Body"] for m in response.get("Messages", [])]

    def size() -> int:
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    return QueueHarness(SqsQueue(clients.sqs, url), send, dead_letters, size)


#: The in-memory queue, then SqsQueue on each emulator (its session server's fixture).
KINDS = ["memory", *(using(name, f"{name}_server") for name in EMULATORS)]


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest) -> Iterator[QueueHarness]:
    if request.param == "memory":
        yield _memory()
    else:
        yield _sqs(request.getfixturevalue(f"{request.param}_server"))


def _receive(harness: QueueHarness, wait: int = 0, visibility: int = 30) -> Message | None:
    return harness.queue.receive(wait_seconds=wait, visibility_timeout=visibility)


def _must_receive(harness: QueueHarness, wait: int = 0, visibility: int = 30) -> Message:
    message = _receive(harness, wait, visibility)
    assert message is not None, "expected a message"
    return message


def test_receive_returns_the_message_with_count_one(harness: QueueHarness) -> None:
    harness.send('{"TrialNo": "0001"}')
    before = time.monotonic()
    message = _must_receive(harness, wait=1)
    assert message.body == '{"TrialNo": "0001"}'
    assert message.receive_count == 1
    assert message.message_id and message.receipt
    assert before <= message.received_at <= time.monotonic()


def test_idle_long_poll_waits_then_returns_none(harness: QueueHarness) -> None:
    started = time.monotonic()
    assert _receive(harness, wait=1) is None
    assert time.monotonic() - started >= 0.9


def test_long_poll_returns_promptly_when_a_message_arrives(harness: QueueHarness) -> None:
    received: list[Message | None] = []
    poller = threading.Thread(target=lambda: received.append(_receive(harness, wait=15)))
    started = time.monotonic()
    poller.start()
    time.sleep(0.3)
    harness.send("late")
    poller.join(timeout=20)
    elapsed = time.monotonic() - started
    assert received and received[0] is not None and received[0].body == "late"
    # Returned before its 15 s long poll ended (no finer bound: CI machines are busy).
    assert elapsed < 15, f"the long poll took {elapsed:.1f} s after the message arrived"


def test_a_held_message_is_invisible_to_others(harness: QueueHarness) -> None:
    harness.send("held")
    _must_receive(harness, visibility=30)
    assert _receive(harness) is None


def test_a_message_comes_back_when_its_visibility_lapses(harness: QueueHarness) -> None:
    harness.send("lapses")
    first = _must_receive(harness, visibility=1)
    again = _must_receive(harness, wait=5)
    assert again.message_id == first.message_id
    assert again.receive_count == 2


def test_extend_keeps_the_message_hidden(harness: QueueHarness) -> None:
    harness.send("extended")
    message = _must_receive(harness, visibility=1)
    harness.queue.extend(message, 30)
    time.sleep(1.5)
    assert _receive(harness) is None


def test_make_visible_zero_shows_the_message_at_once(harness: QueueHarness) -> None:
    harness.send("made visible")
    message = _must_receive(harness, visibility=60)
    harness.queue.make_visible(message)
    again = _must_receive(harness)
    assert again.body == "made visible"
    assert again.receive_count == 2


def test_make_visible_with_a_delay_hides_the_message_until_then(harness: QueueHarness) -> None:
    harness.send("later")
    message = _must_receive(harness, visibility=60)
    harness.queue.make_visible(message, delay=1)
    assert _receive(harness) is None
    assert _must_receive(harness, wait=5).body == "later"


def test_resend_delays_and_resets_the_receive_count(harness: QueueHarness) -> None:
    harness.send("old")
    message = _must_receive(harness)
    harness.queue.resend(message, "new", delay=1)
    assert _receive(harness) is None
    copy = _must_receive(harness, wait=5)
    assert copy.body == "new"
    assert copy.receive_count == 1
    assert copy.message_id != message.message_id


def test_resend_again_and_again_never_reaches_the_dead_letter_queue(
    harness: QueueHarness,
) -> None:
    harness.send("patient")
    for _ in range(MAX_RECEIVES + 2):
        message = _must_receive(harness)
        assert message.receive_count == 1
        harness.queue.resend(message, message.body, delay=0)
    assert _must_receive(harness).body == "patient"
    assert harness.dead_letters() == []


def test_make_visible_again_and_again_reaches_the_dead_letter_queue(harness: QueueHarness) -> None:
    harness.send("doomed")
    for count in range(1, MAX_RECEIVES + 1):
        message = _must_receive(harness)
        assert message.receive_count == count
        harness.queue.make_visible(message)
    assert _receive(harness) is None
    assert harness.dead_letters() == ["doomed"]


def test_delete_removes_the_message_for_good(harness: QueueHarness) -> None:
    harness.send("done")
    message = _must_receive(harness)
    assert harness.size() == 1
    harness.queue.delete(message)
    assert harness.size() == 0
    # A second delete with the same receipt: moto and the memory queue accept it,
    # MiniStack refuses it (ReceiptHandleIsInvalid). AWS documents only that a
    # delete with an older receipt "still succeeds", so both answers are allowed:
    # the runner's Settler logs a refused delete and goes on. Either way the
    # message stays gone.
    with contextlib.suppress(ReceiptExpired):
        harness.queue.delete(message)
    assert harness.size() == 0


def test_a_deleted_message_cannot_be_extended_or_made_visible(harness: QueueHarness) -> None:
    harness.send("gone")
    message = _must_receive(harness)
    harness.queue.delete(message)
    with pytest.raises(ReceiptExpired):
        harness.queue.extend(message, 30)
    with pytest.raises(ReceiptExpired):
        harness.queue.make_visible(message)


def test_an_unknown_receipt_is_refused(harness: QueueHarness) -> None:
    harness.send("real")
    real = _must_receive(harness)
    forged = Message(real.message_id, real.body, "not-a-receipt", 1, real.received_at)
    with pytest.raises(ReceiptExpired):
        harness.queue.delete(forged)
    harness.queue.delete(real)


def test_check_reports_the_redrive_limit(harness: QueueHarness) -> None:
    info = harness.queue.check()
    assert info.max_receive_count == MAX_RECEIVES
    assert info.url == harness.queue.url


def test_check_and_stats_report_the_retention_period(harness: QueueHarness) -> None:
    assert harness.queue.check().retention_seconds == QUEUE_RETENTION_SECONDS
    empty = harness.queue.stats()
    assert empty.retention_seconds == QUEUE_RETENTION_SECONDS
    assert empty.retention_left is None  # no message: nothing to lose
    harness.send("waiting")
    stats = harness.queue.stats()
    if stats.oldest_age is None:  # moto and MiniStack publish no CloudWatch age
        assert stats.retention_left is None
    else:
        assert stats.retention_left == QUEUE_RETENTION_SECONDS - stats.oldest_age


def test_concurrent_consumers_never_get_the_same_message(harness: QueueHarness) -> None:
    bodies = [f"job-{n}" for n in range(12)]
    for body in bodies:
        harness.send(body)
    received: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        while (message := _receive(harness, wait=1)) is not None:
            with lock:
                received.append(message.body)

    consumers = [threading.Thread(target=consume) for _ in range(4)]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join(timeout=30)
    assert sorted(received) == sorted(bodies)


def test_receive_many_returns_a_batch_of_distinct_messages_never_more_than_asked(
    harness: QueueHarness,
) -> None:
    bodies = [f"batch-{n}" for n in range(5)]
    for body in bodies:
        harness.send(body)
    first = harness.queue.receive_many(wait_seconds=1, visibility_timeout=30, max_messages=3)
    # SQS may answer with fewer than are there, never with more than asked.
    assert 1 <= len(first) <= 3
    received = list(first)
    while (more := harness.queue.receive_many(0, 30, 10)) != []:
        received.extend(more)
    assert sorted(m.body for m in received) == sorted(bodies)
    assert len({m.message_id for m in received}) == len(bodies)
    assert all(m.receive_count == 1 for m in received)


def test_receive_many_is_capped_at_sqs_s_ten(harness: QueueHarness) -> None:
    # SQS rejects MaxNumberOfMessages above 10: the queue clamps what it asks for.
    for n in range(12):
        harness.send(f"many-{n}")
    batch = harness.queue.receive_many(wait_seconds=1, visibility_timeout=30, max_messages=25)
    assert 1 <= len(batch) <= 10


def test_receive_many_of_an_empty_queue_returns_an_empty_batch(harness: QueueHarness) -> None:
    assert harness.queue.receive_many(wait_seconds=1, visibility_timeout=30, max_messages=4) == []


# --- FIFO queues ----------------------------------------------------------------------


@dataclass(frozen=True)
class FifoHarness:
    """A FIFO queue under test and the platform's way of sending to it (body, group)."""

    queue: MemoryQueue | SqsQueue
    send: Callable[[str, str], object]


def _memory_fifo() -> FifoHarness:
    queue = MemoryQueue(fifo=True)
    return FifoHarness(queue, lambda body, group: queue.send(body, group_id=group))


def _sqs_fifo(server: LocalServer) -> FifoHarness:
    clients = server.clients()
    url = clients.sqs.create_queue(
        QueueName=f"contract-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]

    def send(body: str, group: str) -> object:
        return clients.sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageGroupId=group,
            MessageDeduplicationId=uuid.uuid4().hex,
        )

    queue = SqsQueue(clients.sqs, url)
    queue.check()
    return FifoHarness(queue, send)


@pytest.fixture(params=KINDS)
def fifo(request: pytest.FixtureRequest) -> FifoHarness:
    if request.param == "memory":
        return _memory_fifo()
    return _sqs_fifo(request.getfixturevalue(f"{request.param}_server"))


def _fifo_receive(fifo: FifoHarness) -> Message | None:
    return fifo.queue.receive(0, 30)


def test_fifo_check_reports_the_kind(fifo: FifoHarness) -> None:
    assert fifo.queue.check().fifo is True


def test_fifo_receive_reports_the_group(fifo: FifoHarness) -> None:
    fifo.send("a", "group-1")
    message = _fifo_receive(fifo)
    assert message is not None and message.group_id == "group-1"


def test_fifo_resend_keeps_the_group_and_is_not_deduplicated(fifo: FifoHarness) -> None:
    fifo.send("a", "group-1")
    message = _fifo_receive(fifo)
    assert message is not None
    fifo.queue.resend(message, "a", 30)  # FIFO refuses delays: visible at once
    again = _fifo_receive(fifo)
    assert again is not None and again.body == "a" and again.receive_count == 1
    assert again.group_id == "group-1"
    fifo.queue.resend(again, "a", 0)  # the same body twice within 5 minutes: still kept
    third = _fifo_receive(fifo)
    assert third is not None and third.body == "a" and third.group_id == "group-1"


def test_fifo_holds_a_group_while_its_oldest_message_is_in_flight(fifo: FifoHarness) -> None:
    fifo.send("a", "group-1")
    fifo.send("b", "group-1")
    fifo.send("c", "group-2")
    first = _fifo_receive(fifo)
    assert first is not None and first.body == "a"
    other = _fifo_receive(fifo)
    assert other is not None and other.body == "c"
    assert _fifo_receive(fifo) is None  # "b" waits behind the held "a"
    fifo.queue.delete(first)
    second = _fifo_receive(fifo)
    assert second is not None and second.body == "b"


def test_fifo_resent_copy_goes_behind_the_rest_of_its_group(fifo: FifoHarness) -> None:
    fifo.send("a", "group-1")
    fifo.send("b", "group-1")
    first = _fifo_receive(fifo)
    assert first is not None and first.body == "a"
    fifo.queue.resend(first, "a-copy", 0)
    second = _fifo_receive(fifo)
    assert second is not None and second.body == "b"
    fifo.queue.delete(second)
    third = _fifo_receive(fifo)
    assert third is not None and third.body == "a-copy"


def test_the_memory_queue_needs_no_aws_library() -> None:
    """SQS's limits live on the seam, not in the boto3 adapter the memory queue models."""
    assert aws_libraries_imported_by("opthub_runner_admin.queue.memory") == []


# --- the fleet's operations (FleetQueue) ----------------------------------------------


def _dead_letter(harness: QueueHarness) -> Message:
    """Send one message and release it until the redrive limit moves it to the DLQ."""
    harness.send("dead")
    for _ in range(MAX_RECEIVES):
        harness.queue.make_visible(_must_receive(harness))
    assert _receive(harness) is None  # this receive moves it
    dead_letter = harness.queue.dead_letter_queue()
    assert dead_letter is not None
    message = dead_letter.receive(1, 30)
    assert message is not None and message.body == "dead"
    dead_letter.make_visible(message)
    return message


def test_stats_counts_visible_in_flight_and_delayed(harness: QueueHarness) -> None:
    for body in ("a", "b", "c"):
        harness.send(body)
    _must_receive(harness, visibility=60)
    held_back = _must_receive(harness, visibility=60)
    harness.queue.make_visible(held_back, delay=60)
    stats = harness.queue.stats()
    assert (stats.visible, stats.total) == (1, 3)
    # SQS counts a released message with a delay as not visible ("in flight"), not delayed:
    # only a message sent with a delay is "delayed".
    assert stats.in_flight == 2 and stats.delayed == 0
    assert stats.url == harness.queue.url


def test_stats_reports_the_dead_letter_queue_and_its_count(harness: QueueHarness) -> None:
    before = harness.queue.stats()
    assert before.dead_letters == 0 and before.dead_letter_url is not None
    _dead_letter(harness)
    after = harness.queue.stats()
    assert after.dead_letters == 1
    dead_letter = harness.queue.dead_letter_queue()
    assert dead_letter is not None and after.dead_letter_url == dead_letter.url
    assert dead_letter.stats().dead_letters is None  # a DLQ has no DLQ of its own


def test_a_queue_without_redrive_policy_has_no_dead_letter_queue(
    harness: QueueHarness, request: pytest.FixtureRequest
) -> None:
    plain = _plain_queue(harness, request)
    assert plain.dead_letter_queue() is None
    assert plain.stats().dead_letters is None


def test_send_returns_an_id_and_the_message_is_visible_at_once(harness: QueueHarness) -> None:
    message_id = harness.queue.send("sent")
    received = _must_receive(harness, wait=1)
    assert (received.message_id, received.body, received.receive_count) == (message_id, "sent", 1)


def test_redrive_one_by_one_brings_a_dead_letter_back_fresh(harness: QueueHarness) -> None:
    dead = _dead_letter(harness)
    dead_letter = harness.queue.dead_letter_queue()
    assert dead_letter is not None
    lines: list[str] = []
    done = redrive(dead_letter, harness.queue, limit=5, report=lines.append)
    assert (done.moved, done.by_task) == (1, False)
    assert len(lines) == 1 and dead.message_id in lines[0]
    assert dead_letter.stats().total == 0
    back = _must_receive(harness, wait=1)
    assert back.body == "dead" and back.receive_count == 1


def test_redrive_is_bounded_by_max(harness: QueueHarness) -> None:
    dead_letter = harness.queue.dead_letter_queue()
    assert dead_letter is not None
    for n in range(5):
        dead_letter.send(f"dead-{n}")
    lines: list[str] = []
    done = redrive(dead_letter, harness.queue, limit=2, report=lines.append)
    assert done.moved == 2 and len(lines) == 2
    assert harness.size() == 2
    assert dead_letter.stats().total == 3


def test_redrive_all_moves_every_dead_letter(harness: QueueHarness) -> None:
    """The endpoint's own task where it has one (memory), else one by one (moto has none)."""
    dead_letter = harness.queue.dead_letter_queue()
    assert dead_letter is not None
    bodies = [f"dead-{n}" for n in range(12)]
    for body in bodies:
        dead_letter.send(body)
    lines: list[str] = []
    done = redrive(dead_letter, harness.queue, limit=None, report=lines.append)
    assert done.moved == len(bodies)
    assert dead_letter.stats().total == 0
    received = harness.queue.receive_many(1, 30, 10) + harness.queue.receive_many(1, 30, 10)
    assert sorted(m.body for m in received) == sorted(bodies)
    if not done.by_task:
        assert len([line for line in lines if line.startswith("moved ")]) == len(bodies)


def test_redrive_never_loses_a_message_when_the_send_fails(harness: QueueHarness) -> None:
    dead_letter = harness.queue.dead_letter_queue()
    assert dead_letter is not None
    for n in range(3):
        dead_letter.send(f"dead-{n}")

    class Refusing:
        url = "refusing://"

        def send(self, body: str, *, group_id: str | None = None) -> str:
            raise TransientError("the destination refuses")

    with pytest.raises(TransientError):
        redrive(dead_letter, Refusing(), limit=3, report=lambda line: None)  # type: ignore[arg-type]
    assert dead_letter.stats().visible == 3  # all back at once, none lost


def test_peek_lists_each_dead_letter_once_and_leaves_it_there(harness: QueueHarness) -> None:
    dead_letter = harness.queue.dead_letter_queue()
    assert dead_letter is not None
    for n in range(4):
        dead_letter.send(f'{{"MatchID": "m", "ParticipantID": "p", "TrialNo": "000{n}"}}')
    listed = peek(dead_letter, 10)
    assert sorted(m.body for m in listed) == sorted(
        f'{{"MatchID": "m", "ParticipantID": "p", "TrialNo": "000{n}"}}' for n in range(4)
    )
    assert dead_letter.stats().visible == 4  # made visible again
    assert len(peek(dead_letter, 2)) == 2
    assert "match m participant p trial 0000" in "\n".join(list_lines(listed))


def test_fifo_send_keeps_the_group_with_a_fresh_deduplication_id(fifo: FifoHarness) -> None:
    fifo.queue.send("same", group_id="group-7")
    fifo.queue.send("same", group_id="group-7")  # within 5 minutes: kept, not deduplicated
    first = _fifo_receive(fifo)
    assert first is not None and first.group_id == "group-7"
    fifo.queue.delete(first)
    second = _fifo_receive(fifo)
    assert second is not None and second.body == "same" and second.group_id == "group-7"


def _plain_queue(harness: QueueHarness, request: pytest.FixtureRequest) -> MemoryQueue | SqsQueue:
    if isinstance(harness.queue, MemoryQueue):
        return MemoryQueue()
    emulator = request.node.callspec.params["harness"]
    clients = request.getfixturevalue(f"{emulator}_server").clients()
    url = create_queue(clients.sqs, f"plain-{uuid.uuid4().hex[:10]}")
    return SqsQueue(clients.sqs, url)
