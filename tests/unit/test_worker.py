"""The worker loop on the in-memory queue: settling, heartbeats, stopping, errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from opthub_runner_admin.errors import FatalError
from opthub_runner_admin.executor import Cancelled
from opthub_runner_admin.jobs.outcome import Done, Drop, HandBack, JobContext, Outcome, Resend
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.worker import Worker, WorkerSettings

FAST = WorkerSettings(poll_seconds=1, visibility_window=1, backoff_initial=0.05, backoff_max=0.1)

HandlerFn = Callable[[Message, JobContext], Outcome]


class Recorder:
    """A handler that records what it saw and answers with ``answer``."""

    def __init__(self, answer: HandlerFn) -> None:
        self.answer = answer
        self.seen: list[Message] = []
        self.started = threading.Event()

    def __call__(self, message: Message, ctx: JobContext) -> Outcome:
        self.seen.append(message)
        self.started.set()
        return self.answer(message, ctx)


def worker_for(queue: MemoryQueue, handler: HandlerFn, **changes: Any) -> Worker:
    settings = replace(FAST, **changes)
    return Worker(queue=queue, handler=handler, settings=settings, name="test")


def run_in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_done_and_drop_delete_and_count_towards_num() -> None:
    queue = MemoryQueue()
    for n in range(3):
        queue.send(json.dumps({"n": n}))
    answers: Iterator[Outcome] = iter([Done("ok"), Drop("bad"), Done("ok")])
    handler = Recorder(lambda m, c: next(answers))
    stats = worker_for(queue, handler, max_jobs=3).run()
    assert (stats.done, stats.dropped, stats.finished) == (2, 1, 3)
    assert queue.visible_count() == 0 and queue.in_flight_count() == 0
    assert len(handler.seen) == 3


def test_retry_with_body_resends_a_fresh_copy() -> None:
    queue = MemoryQueue()
    queue.send("original")
    answers: Iterator[Outcome] = iter([Resend(0, "later", body="copy"), Done("ok")])
    handler = Recorder(lambda m, c: next(answers))
    stats = worker_for(queue, handler, max_jobs=1).run()
    assert stats.retried == 1 and stats.done == 1
    assert [m.body for m in handler.seen] == ["original", "copy"]
    # A resent copy starts its receive count again: deliberate retries never reach a DLQ.
    assert [m.receive_count for m in handler.seen] == [1, 1]


def test_retry_without_body_releases_the_same_message() -> None:
    queue = MemoryQueue()
    queue.send("m")
    answers: Iterator[Outcome] = iter([HandBack(0, "again"), Done("ok")])
    handler = Recorder(lambda m, c: next(answers))
    worker_for(queue, handler, max_jobs=1).run()
    assert [m.receive_count for m in handler.seen] == [1, 2]
    assert handler.seen[0].message_id == handler.seen[1].message_id


def test_heartbeat_keeps_a_long_job_hidden() -> None:
    queue = MemoryQueue()
    queue.send("slow")
    hidden_throughout: list[bool] = []

    def slow(message: Message, ctx: JobContext) -> Outcome:
        # Three visibility windows: without renewals the message would reappear.
        for _ in range(30):
            time.sleep(0.1)
            hidden_throughout.append(queue.visible_count() == 0)
        return Done("ok")

    stats = worker_for(queue, Recorder(slow), max_jobs=1, visibility_window=1).run()
    assert stats.done == 1
    assert all(hidden_throughout)
    assert queue.visible_count() == 0 and queue.in_flight_count() == 0


def test_without_heartbeat_the_message_would_reappear() -> None:
    """Guards the previous test: the window really is short enough to lapse."""
    queue = MemoryQueue()
    queue.send("m")
    message = queue.receive(0, 1)
    assert message is not None
    time.sleep(1.3)
    assert queue.visible_count() == 1


def test_stop_lets_the_running_job_finish() -> None:
    queue = MemoryQueue()
    queue.send("m1")
    queue.send("m2")
    release = threading.Event()

    def job(message: Message, ctx: JobContext) -> Outcome:
        release.wait(10)
        return Done("ok")

    handler = Recorder(job)
    worker = worker_for(queue, handler)
    thread = run_in_thread(worker)
    assert handler.started.wait(10)
    worker.stop()
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert worker.stats.done == 1
    assert len(handler.seen) == 1
    assert queue.visible_count() + queue.in_flight_count() == 1  # m2 untouched


def _cancellable(message: Message, ctx: JobContext) -> Outcome:
    if ctx.cancel.wait(20):
        raise Cancelled("stopped by the operator")
    return Done("ok")


def test_second_stop_cancels_and_hands_the_message_back_at_once() -> None:
    queue = MemoryQueue()
    queue.send("m")
    handler = Recorder(_cancellable)
    worker = worker_for(queue, handler, visibility_window=60)
    thread = run_in_thread(worker)
    assert handler.started.wait(10)
    worker.stop()
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert worker.stats.cancelled == 1 and worker.stats.done == 0
    # Released with no delay, although the visibility window is a minute.
    assert queue.visible_count() == 1


def test_grace_period_cancels_a_job_that_runs_on() -> None:
    queue = MemoryQueue()
    queue.send("m")
    handler = Recorder(_cancellable)
    worker = worker_for(queue, handler, visibility_window=60, grace_period=0.3)
    thread = run_in_thread(worker)
    assert handler.started.wait(10)
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert worker.stats.cancelled == 1
    assert queue.visible_count() == 1


def test_an_unexpected_error_puts_the_message_back_and_the_loop_goes_on() -> None:
    queue = MemoryQueue()
    queue.send("boom")
    queue.send("fine")

    def job(message: Message, ctx: JobContext) -> Outcome:
        if message.body == "boom":
            raise RuntimeError("bug")
        return Done("ok")

    stats = worker_for(queue, Recorder(job), max_jobs=1).run()
    assert stats.errors == 1 and stats.done == 1
    assert queue.visible_count() + queue.in_flight_count() + queue.delayed_count() == 1


def test_a_fatal_error_hands_the_message_back_and_stops() -> None:
    queue = MemoryQueue()
    queue.send("m")

    def job(message: Message, ctx: JobContext) -> Outcome:
        raise FatalError("login expired")

    with pytest.raises(FatalError):
        worker_for(queue, Recorder(job), visibility_window=60).run()
    assert queue.visible_count() == 1


def test_an_idle_worker_wakes_for_a_new_message() -> None:
    queue = MemoryQueue()
    handler = Recorder(lambda m, c: Done("ok"))
    worker = worker_for(queue, handler, max_jobs=1, poll_seconds=20)
    thread = run_in_thread(worker)
    time.sleep(0.2)
    queue.send("late")
    # One long poll lasts 20 s: finishing well before that means the poll woke up.
    thread.join(10)
    assert not thread.is_alive()
    assert worker.stats.done == 1
