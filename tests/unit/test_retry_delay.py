"""A message put back says when it really comes back: in the log and on the status page.

The job asks for 60 s (an administrator's error); the worker backs off from
the match for 5 s only. The log once said "5s", while the message came back
after 60: now both the log line and the page's "retried" row give the delay
the queue really applies (none on a FIFO queue, which refuses delays).
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from opthub_runner_admin.jobs.outcome import Cause, JobContext, Outcome, Resend
from opthub_runner_admin.observe.board import StatusBoard
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.worker import Worker, WorkerSettings

BODY = '{"MatchID": "m-1", "ParticipantID": "alice", "TrialNo": "0001"}'


def _run_once(queue: MemoryQueue, board: StatusBoard) -> None:
    """Run a worker until its one job has put the message back, then stop it."""
    ran = threading.Event()

    def handler(message: Message, ctx: JobContext) -> Outcome:
        ran.set()
        return Resend(60, "image missing", body=message.body, backoff=Cause("match:m-1"))

    settings = WorkerSettings(poll_seconds=1, visibility_window=5, backoff_initial=5.0)
    worker = Worker(queue=queue, handler=handler, settings=settings, name="test", events=board)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert ran.wait(10)
    deadline = time.monotonic() + 10
    while not board.snapshot().recent and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop()
    thread.join(timeout=10)


def test_the_log_and_the_page_give_the_delay_the_message_really_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = MemoryQueue()
    queue.send(BODY)
    board = StatusBoard(slow_after=600)
    with caplog.at_level(logging.INFO):
        _run_once(queue, board)

    assert queue.delayed_count() == 1 and queue.visible_count() == 0  # it really waits
    text = caplog.text
    assert "goes back to the queue (image missing); visible again in 60 s" in text
    assert "match:m-1 failing; its other messages go back to the queue for 5s" in text
    [row] = board.snapshot().recent
    assert (row.outcome, row.admin_message) == ("retried", "image missing (back in 60 s)")


def test_on_a_fifo_queue_the_copy_is_back_at_once_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = MemoryQueue(fifo=True)
    queue.send(BODY, group_id="alice")
    board = StatusBoard(slow_after=600)
    with caplog.at_level(logging.INFO):
        _run_once(queue, board)

    assert "visible again in 0 s" in caplog.text
    assert "visible again in 60 s" not in caplog.text
    rows = board.snapshot().recent  # back at once, so it may have run more than once
    assert rows and {row.admin_message for row in rows} == {"image missing (back in 0 s)"}
