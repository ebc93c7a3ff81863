"""``opthub-runner dlq``: see dead-lettered messages and bring them back once the image is fixed.

Looking at a message means receiving it: SQS has no other way. Listed
messages are hidden for ``PEEK_VISIBILITY`` seconds while the list is made,
then made visible again at once; each look raises the message's receive count
in the dead-letter queue (harmless: a dead-letter queue has no redrive limit
of its own unless someone set one).

Bringing back uses the endpoint's own message-move task when all of them are
to go and the endpoint has one (SQS does, moto does not); otherwise each
message is received, sent to the source queue, and only then deleted: a
crash in between leaves a copy in both queues, never in none (the copy run
twice is seen as already done by the flag item). A FIFO message keeps its
group id and gets a fresh deduplication id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RunnerError
from ..queue.base import MAX_RECEIVE_BATCH, FleetQueue, Message

log = logging.getLogger(__name__)

#: Seconds a listed or moving message stays hidden from others while this command holds it.
PEEK_VISIBILITY = 60
#: Seconds between two looks at a running message-move task.
MOVE_POLL_SECONDS = 1.0
#: Seconds each receive waits: a long poll asks every SQS server, a short one only some.
RECEIVE_WAIT = 1
#: Longest wait for a message-move task to end before the command gives up watching it.
MOVE_WATCH_SECONDS = 600.0

Report = Callable[[str], None]


class NoDeadLetterQueue(Exception):
    """The queue has no redrive policy: there is nothing to list or bring back."""


def dead_letter_queue_of(queue: FleetQueue, key: str) -> FleetQueue:
    dead_letter = queue.dead_letter_queue()
    if dead_letter is None:
        raise NoDeadLetterQueue(
            f"{key} ({queue.url}) has no dead-letter queue (no RedrivePolicy):"
            " there are no dead letters to see"
        )
    return dead_letter


def peek(dead_letter: FleetQueue, limit: int) -> list[Message]:
    """Up to ``limit`` messages, each once, made visible again before returning."""
    seen: dict[str, Message] = {}
    held: list[Message] = []
    try:
        while len(seen) < limit:
            batch = dead_letter.receive_many(
                RECEIVE_WAIT, PEEK_VISIBILITY, min(MAX_RECEIVE_BATCH, limit - len(seen))
            )
            if not batch:
                break
            held.extend(batch)
            for message in batch:
                seen.setdefault(message.message_id, message)
    finally:
        _make_all_visible(dead_letter, held)
    return list(seen.values())


def _make_all_visible(dead_letter: FleetQueue, messages: list[Message]) -> None:
    """Make ``messages`` visible again at once; one that cannot be is back after its hiding."""
    for message in messages:
        try:
            dead_letter.make_visible(message, 0)
        except RunnerError as exc:
            log.warning(
                "message %s is visible again in %d s at the latest (%s)",
                message.message_id,
                PEEK_VISIBILITY,
                exc,
            )


def summary(message: Message) -> str:
    """Which trial a body names (the platform's keys), else its first characters."""
    try:
        body = json.loads(message.body)
        return (
            f"match {body['MatchID']} participant {body['ParticipantID']} trial {body['TrialNo']}"
        )
    except (ValueError, KeyError, TypeError):
        text = " ".join(message.body.split())
        return text if len(text) <= 80 else text[:77] + "..."


def list_lines(messages: list[Message]) -> list[str]:
    if not messages:
        return ["no dead letters"]
    return [
        f"{m.message_id}  received {m.receive_count}x  {summary(m)}"
        + (f"  (group {m.group_id})" if m.group_id else "")
        for m in messages
    ]


def show_lines(message: Message) -> list[str]:
    lines = [
        f"message id: {message.message_id}",
        f"receive count: {message.receive_count}",
    ]
    if message.group_id:
        lines.append(f"group id: {message.group_id}")
    lines.append(f"trial: {summary(message)}")
    try:
        lines.append("body: " + json.dumps(json.loads(message.body), indent=2, ensure_ascii=False))
    except ValueError:
        lines.append(f"body: {message.body}")
    return lines


@dataclass(frozen=True)
class Redriven:
    """What a redrive did: how many messages went back, and by which way."""

    moved: int
    by_task: bool


def redrive(
    dead_letter: FleetQueue,
    destination: FleetQueue,
    *,
    limit: int | None,
    report: Report,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Redriven:
    """Bring up to ``limit`` dead letters (None: all) back to ``destination``."""
    if limit is None:
        handle = dead_letter.start_move(destination)
        if handle is not None:
            return Redriven(_watch(dead_letter, handle, report, clock, sleep), by_task=True)
        report("the endpoint has no message-move task: moving the messages one by one")
        count = dead_letter.stats().total
        limit = max(count, 0)
    moved = 0
    while moved < limit:
        batch = dead_letter.receive_many(
            RECEIVE_WAIT, PEEK_VISIBILITY, min(MAX_RECEIVE_BATCH, limit - moved)
        )
        if not batch:
            break
        for n, message in enumerate(batch):
            try:
                copy = destination.send(message.body, group_id=message.group_id)
            except BaseException:
                _make_all_visible(dead_letter, batch[n:])
                raise
            dead_letter.delete(message)
            moved += 1
            report(
                f"moved {message.message_id} ({summary(message)}) back to {destination.url}"
                f" as {copy}"
            )
    return Redriven(moved, by_task=False)


def _watch(
    dead_letter: FleetQueue,
    handle: str,
    report: Report,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    report(f"message-move task {handle} started")
    deadline = clock() + MOVE_WATCH_SECONDS
    last = -1
    while True:
        progress = dead_letter.move_progress(handle)
        if progress.moved != last:
            last = progress.moved
            of = f" of {progress.to_move}" if progress.to_move is not None else ""
            report(f"message-move task: {progress.moved}{of} messages moved")
        if progress.failure is not None:
            raise MoveFailed(f"the message-move task stopped: {progress.failure}")
        if progress.finished:
            return progress.moved
        if clock() > deadline:
            report(f"still moving after {MOVE_WATCH_SECONDS:.0f} s; SQS goes on without us")
            return progress.moved
        sleep(MOVE_POLL_SECONDS)


class MoveFailed(Exception):
    """The endpoint's message-move task ended before moving every message."""
