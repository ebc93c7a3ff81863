"""The worker with several slots, on the in-memory queue: slots, admission, backoff, stopping.

Handlers here are small classes that read a test body ``"<group>/<position>"``
and implement the admission hook as a job does; what they do is recorded so
that every assertion is on state (who ran, together with whom, what is back
in the queue), never on a measured duration.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from opthub_runner_admin.errors import FatalError
from opthub_runner_admin.executor import Cancelled
from opthub_runner_admin.jobs.admission import Admission
from opthub_runner_admin.jobs.outcome import Cause, Done, HandBack, JobContext, Outcome, Resend
from opthub_runner_admin.platform_side.runners import wait_for
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.worker import Worker, WorkerSettings

FAST = WorkerSettings(poll_seconds=1, visibility_window=2, backoff_initial=30, backoff_max=60)


class Keyed:
    """A handler whose bodies are ``group/position``; ``work`` does the job."""

    def __init__(self, work: Callable[[Message, JobContext], Outcome], *, ordered: bool = False):
        self.work = work
        self.ordered = ordered
        self.lock = threading.Lock()
        self.running: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.peak_total = 0
        self.started: list[str] = []

    def admission(self, message: Message) -> Admission:
        group, _, position = message.body.partition("/")
        return Admission(
            group=group,
            position=int(position) if self.ordered else None,
            causes=(f"match:{group}",),
        )

    def __call__(self, message: Message, ctx: JobContext) -> Outcome:
        group = message.body.partition("/")[0]
        with self.lock:
            self.started.append(message.body)
            self.running[group] += 1
            self.peak[group] = max(self.peak[group], self.running[group])
            self.peak_total = max(self.peak_total, sum(self.running.values()))
        try:
            return self.work(message, ctx)
        finally:
            with self.lock:
                self.running[group] -= 1

    def count_started(self) -> int:
        with self.lock:
            return len(self.started)


def worker_for(queue: MemoryQueue, handler: Any, **changes: Any) -> Worker:
    return Worker(queue=queue, handler=handler, settings=replace(FAST, **changes), name="test")


def start(worker: Worker) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def blocked_until(gate: threading.Event) -> Callable[[Message, JobContext], Outcome]:
    def work(message: Message, ctx: JobContext) -> Outcome:
        while not gate.wait(0.05):
            if ctx.cancel.is_set():
                raise Cancelled(f"{message.body} cancelled")
        return Done("ok")

    return work


def send(queue: MemoryQueue, *bodies: str) -> None:
    for body in bodies:
        queue.send(body)


def test_n_slots_run_n_jobs_at_once_and_hold_no_more_messages() -> None:
    queue = MemoryQueue()
    send(queue, *(f"g{n}/1" for n in range(5)))
    release = threading.Event()
    handler = Keyed(blocked_until(release))
    worker = worker_for(queue, handler, workers=3, max_jobs=5)
    thread, _ = start(worker)
    wait_for(lambda: handler.count_started() == 3, 10, "three jobs running")
    # Never more messages than slots: the other two are still visible in the queue.
    assert queue.in_flight_count() == 3 and queue.visible_count() == 2
    release.set()
    thread.join(20)
    assert not thread.is_alive()
    assert worker.stats.done == 5 and handler.peak_total == 3
    assert worker.stats.peak_running == 3


def test_num_finishes_exactly_num_with_several_slots() -> None:
    queue = MemoryQueue()
    send(queue, *(f"g{n}/1" for n in range(12)))
    handler = Keyed(lambda m, c: Done("ok"))
    stats = worker_for(queue, handler, workers=4, max_jobs=5).run()
    assert stats.done == 5
    assert stats.received == 5  # nothing over-received near the limit, nothing handed back
    assert queue.visible_count() == 7 and queue.in_flight_count() == 0


class SlowDeletes(MemoryQueue):
    """A memory queue whose deletes wait for ``deletes_go`` (an SQS call that is slow today)."""

    def __init__(self, *, fifo: bool = False) -> None:
        super().__init__(fifo=fifo)
        self.deletes_go = threading.Event()
        self._count_lock = threading.Lock()
        self.deleting = 0

    def delete(self, message: Message) -> None:
        with self._count_lock:
            self.deleting += 1
        self.deletes_go.wait(30)
        super().delete(message)


def test_the_next_job_starts_while_a_finished_message_is_being_deleted() -> None:
    queue = SlowDeletes()
    send(queue, "g1/1", "g2/1")
    handler = Keyed(lambda m, c: Done("ok"))
    # A long window: the finished messages must stay hidden while their deletes hang.
    worker = worker_for(queue, handler, workers=1, max_jobs=2, visibility_window=60)
    thread, errors = start(worker)
    # The first job finished and its delete hangs: the one slot runs the second job.
    wait_for(lambda: worker.stats.done == 2, 10, "both jobs done while the first delete hangs")
    assert handler.count_started() == 2
    # run() does not return before the deletes: both messages are still in flight.
    assert thread.is_alive() and queue.in_flight_count() == 2
    queue.deletes_go.set()
    thread.join(20)
    assert not thread.is_alive() and errors == []
    assert queue.deleting == 2
    assert queue.in_flight_count() == 0 and queue.visible_count() == 0


def test_a_fifo_message_is_deleted_before_its_slot_takes_the_next_of_its_group() -> None:
    """A FIFO message holds its group back until deleted: freeing the slot first gains nothing."""
    queue = SlowDeletes(fifo=True)
    for body in ("g/1", "g/2"):
        queue.send(body, group_id="g")
    handler = Keyed(lambda m, c: Done("ok"))
    worker = worker_for(queue, handler, workers=1, max_jobs=2, visibility_window=60)
    thread, errors = start(worker)
    wait_for(lambda: queue.deleting == 1, 10, "the first delete")
    # The job is not over (its slot not free) until its message is deleted.
    assert worker.stats.done == 0 and handler.count_started() == 1
    queue.deletes_go.set()
    thread.join(20)
    assert not thread.is_alive() and errors == []
    assert handler.started == ["g/1", "g/2"] and worker.stats.done == 2


def test_a_fifo_group_freed_by_a_delete_is_received_at_once() -> None:
    """The memory queue wakes a long poll when a delete frees a FIFO group, as SQS does."""
    queue = MemoryQueue(fifo=True)
    for body in ("g/1", "g/2"):
        queue.send(body, group_id="g")
    handler = Keyed(lambda m, c: Done("ok"))
    # Two slots: the free one long-polls (20 s) while the group is held by the first
    # message; without the wake-up at its delete the second would wait the poll out.
    worker = worker_for(
        queue, handler, workers=2, max_jobs=2, poll_seconds=20, visibility_window=60
    )
    thread, errors = start(worker)
    wait_for(lambda: worker.stats.done == 2, 10, "the group's second message, received at once")
    thread.join(20)
    assert not thread.is_alive() and errors == []


def test_the_per_group_cap_holds_while_other_groups_use_the_slots() -> None:
    queue = MemoryQueue()
    send(queue, *(f"burst/{n}" for n in range(6)), "calm/1", "calm/2")
    release = threading.Event()
    handler = Keyed(blocked_until(release))
    # The burst holds at most cap + 1 slots (two running, one waiting): two stay for others.
    worker = worker_for(queue, handler, workers=5, max_jobs=8, max_jobs_per_group=2)
    thread, _ = start(worker)
    wait_for(lambda: handler.running["calm"] == 2, 20, "the calm group's jobs to run")
    assert handler.running["burst"] == 2
    release.set()
    thread.join(60)
    assert not thread.is_alive()
    assert worker.stats.done == 8
    assert handler.peak["burst"] == 2
    # The burst's extra messages went back to the queue rather than hold every slot.
    assert worker.stats.held_back >= 1


def test_one_group_runs_in_order_while_others_run_beside_it() -> None:
    queue = MemoryQueue()
    send(queue, *(f"{group}/{n}" for n in range(1, 5) for group in ("p", "q", "r")))
    handler = Keyed(lambda m, c: Done("ok"), ordered=True)
    stats = worker_for(queue, handler, workers=4, max_jobs=12).run()
    assert stats.done == 12
    for group in "pqr":
        order = [int(b.partition("/")[2]) for b in handler.started if b.startswith(group)]
        assert sorted(order) == [1, 2, 3, 4]
        if stats.held_back == 0:
            # Every message was held here until its turn: the group ran in order, alone.
            assert order == [1, 2, 3, 4]
            assert handler.peak[group] == 1
        else:
            # Under load the gate sends a later message back (5 s) while an earlier one
            # waits; a standard queue gives copies back in no order, so a later trial may
            # start before an earlier one that is not held here (the scorer's wait on the
            # table covers that case, docs/guarantees.md "Scoring history"). Each such
            # inversion needs a message that went back.
            inversions = sum(a > b for i, a in enumerate(order) for b in order[i + 1 :])
            assert inversions <= stats.held_back


def test_a_later_trial_waits_locally_for_an_earlier_one() -> None:
    queue = MemoryQueue()
    send(queue, "p/1", "p/2")
    release = threading.Event()
    handler = Keyed(blocked_until(release), ordered=True)
    worker = worker_for(queue, handler, workers=2, max_jobs=2)
    thread, _ = start(worker)
    wait_for(lambda: queue.in_flight_count() == 2, 10, "both messages held")
    wait_for(handler.count_started, 10, "the first job")
    assert handler.started == ["p/1"]  # p/2 is held here, not running, not sent back
    release.set()
    thread.join(20)
    assert handler.started == ["p/1", "p/2"]
    assert worker.stats.held_back == 0 and worker.stats.received == 2


def test_a_message_that_waited_too_long_goes_back_as_a_fresh_copy() -> None:
    # Its 12-hour budget counts from its receive: after a long local wait it
    # would run on what is left (and could be cut short), so a fresh copy (a
    # fresh receipt) goes back instead, and runs when it comes round again.
    queue = MemoryQueue()
    send(queue, "p/1", "p/2")
    release = threading.Event()
    handler = Keyed(blocked_until(release), ordered=True)
    worker = worker_for(queue, handler, workers=2, max_jobs=2, max_local_wait=0.2)
    thread, _ = start(worker)
    wait_for(lambda: queue.in_flight_count() == 2, 10, "both messages held")
    wait_for(handler.count_started, 10, "the first job")
    wait_for(lambda: worker.stats.received == 2, 10, "p/2 received")
    threading.Event().wait(0.5)  # p/2 waits here longer than max_local_wait
    release.set()
    thread.join(20)
    assert not thread.is_alive()
    assert handler.started == ["p/1", "p/2"]
    assert worker.stats.held_back == 1  # p/2 went back once, unstarted
    assert worker.stats.received == 3  # and its fresh copy was received and run


def test_stop_sends_waiting_messages_back_at_once_and_drains_the_running() -> None:
    queue = MemoryQueue()
    send(queue, "p/1", "p/2")
    release = threading.Event()
    handler = Keyed(blocked_until(release), ordered=True)
    worker = worker_for(queue, handler, workers=2, visibility_window=60)
    thread, _ = start(worker)
    wait_for(lambda: queue.in_flight_count() == 2, 10, "both messages held")
    wait_for(handler.count_started, 10, "the first job")
    worker.stop()
    # p/2 never started: visible again now, although the window is a minute.
    wait_for(lambda: queue.visible_count() == 1, 10, "the waiting message back")
    assert thread.is_alive()  # p/1 still drains
    release.set()
    thread.join(20)
    assert not thread.is_alive()
    assert worker.stats.done == 1 and handler.started == ["p/1"]


def test_a_second_stop_cancels_every_job_and_hands_all_back() -> None:
    queue = MemoryQueue()
    send(queue, "a/1", "b/1", "c/1")
    handler = Keyed(blocked_until(threading.Event()))
    worker = worker_for(queue, handler, workers=3, visibility_window=60)
    thread, _ = start(worker)
    wait_for(lambda: handler.count_started() == 3, 10, "three jobs running")
    worker.stop()
    worker.stop()
    thread.join(20)
    assert not thread.is_alive()
    assert worker.stats.cancelled == 3 and worker.stats.done == 0
    assert queue.visible_count() == 3


def test_the_grace_period_cancels_every_job_that_runs_on() -> None:
    queue = MemoryQueue()
    send(queue, "a/1", "b/1")
    handler = Keyed(blocked_until(threading.Event()))
    worker = worker_for(queue, handler, workers=2, visibility_window=60, grace_period=0.3)
    thread, _ = start(worker)
    wait_for(lambda: handler.count_started() == 2, 10, "two jobs running")
    worker.stop()
    thread.join(20)
    assert not thread.is_alive()
    assert worker.stats.cancelled == 2 and queue.visible_count() == 2


def test_a_fatal_error_in_one_slot_cancels_the_others_and_raises() -> None:
    queue = MemoryQueue()
    send(queue, "a/1", "b/1", "fatal/1")
    others_running = threading.Event()
    handler: Keyed

    def work(message: Message, ctx: JobContext) -> Outcome:
        if message.body.startswith("fatal"):
            others_running.wait(10)
            raise FatalError("the login can no longer be renewed")
        if handler.running["a"] and handler.running["b"]:
            others_running.set()
        return blocked_until(threading.Event())(message, ctx)

    handler = Keyed(work)
    worker = worker_for(queue, handler, workers=3, visibility_window=60)
    thread, errors = start(worker)
    thread.join(30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], FatalError)
    assert worker.stats.cancelled == 2
    assert queue.visible_count() == 3  # every message handed back at once


def test_a_broken_match_backs_off_alone_while_a_healthy_one_flows() -> None:
    queue = MemoryQueue(max_receive_count=2)
    send(queue, "broken/1", "broken/2", "broken/3", *(f"healthy/{n}" for n in range(5)))

    def work(message: Message, ctx: JobContext) -> Outcome:
        if message.body.startswith("broken"):
            return Resend(60, "image missing", body=message.body, backoff=Cause("match:broken"))
        return Done("ok")

    handler = Keyed(work)
    stats = worker_for(queue, handler, max_jobs=5).run()
    assert stats.done == 5
    # Tried once; its other messages went back without running, as fresh copies.
    assert [b for b in handler.started if b.startswith("broken")] == ["broken/1"]
    assert stats.retried == 1 and stats.held_back == 2
    assert sorted(queue.bodies()) == ["broken/1", "broken/2", "broken/3"]
    assert queue.dead_letter_bodies() == []


def test_a_shared_cause_pauses_receiving_until_stopped() -> None:
    queue = MemoryQueue()
    send(queue, "a/1")

    def work(message: Message, ctx: JobContext) -> Outcome:
        return HandBack(0, "daemon gone", backoff=Cause("docker", shared=True))

    handler = Keyed(work)
    worker = worker_for(queue, handler, workers=2, backoff_initial=300, backoff_max=300)
    thread, _ = start(worker)
    wait_for(lambda: worker.stats.retried, 10, "the first attempt")
    send(queue, "b/1")
    # Every message would meet a Docker outage: nothing more runs meanwhile.
    assert not wait_for_or_none(lambda: handler.count_started() > 1, 1.5)
    assert worker.stats.retried == 1
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert sorted(queue.bodies()) == ["a/1", "b/1"]


def wait_for_or_none(condition: Callable[[], bool], timeout: float) -> bool:
    try:
        wait_for(condition, timeout, "")
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("workers", [0, -1])
def test_fewer_than_one_worker_is_refused(workers: int) -> None:
    with pytest.raises(ValueError):
        worker_for(MemoryQueue(), Keyed(lambda m, c: Done("ok")), workers=workers)


def test_after_a_shared_pause_one_probe_runs_before_the_others() -> None:
    queue = MemoryQueue()
    send(queue, "a/1")
    release = threading.Event()
    first = threading.Event()

    def work(message: Message, ctx: JobContext) -> Outcome:
        if not first.is_set():
            first.set()
            return HandBack(0, "daemon gone", backoff=Cause("docker", shared=True))
        return blocked_until(release)(message, ctx)

    handler = Keyed(work)
    # The others wait for the probe for at most the pause (then another may probe):
    # a pause well above the 1.5 s looked at below.
    worker = worker_for(queue, handler, workers=3, max_jobs=4, backoff_initial=5)
    thread, _ = start(worker)
    wait_for(lambda: worker.stats.retried, 10, "the first failure")
    send(queue, "b/1", "c/1", "d/1")
    wait_for(lambda: handler.count_started() == 2, 20, "the probe after the pause")
    # Docker may still be away: the others wait for the probe instead of all failing.
    assert not wait_for_or_none(lambda: handler.count_started() > 2, 1.5)
    release.set()
    thread.join(20)
    assert not thread.is_alive()
    assert worker.stats.done == 4 and worker.stats.retried == 1


def test_jobs_that_meet_one_outage_together_count_as_one_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A Docker restart ends every running container at once: each of those jobs
    # doubling the pause would keep the runner idle long after Docker is back, and
    # one of them that finished as the outage began proves nothing of Docker now.
    queue = MemoryQueue()
    send(queue, "a/1", "a/2", "a/3", "a/4")
    gate = threading.Event()
    failed: set[str] = set()

    def work(message: Message, ctx: JobContext) -> Outcome:
        if message.body.startswith("a/") and message.body not in failed:
            gate.wait(10)
            if message.body != "a/1":
                failed.add(message.body)
                return HandBack(0, "daemon gone", backoff=Cause("docker", shared=True))
        return Done("ok")

    handler = Keyed(work)
    worker = worker_for(queue, handler, workers=4, max_jobs=4, backoff_initial=1)
    caplog.set_level("INFO", logger="opthub_runner_admin.worker.loop")
    thread, errors = start(worker)
    wait_for(lambda: handler.count_started() == 4, 10, "four jobs running")
    gate.set()
    wait_for(lambda: worker.stats.retried == 3 and worker.stats.done == 1, 10, "the outage")
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if "failing" in line] == [
        "test: docker failing; pausing new work for 1s"
    ]
    assert not [line for line in lines if "working again" in line]
    # Docker is back: after the one pause, a probe and then the three handed back run.
    thread.join(20)
    assert not thread.is_alive() and errors == []
    assert worker.stats.done == 4 and worker.stats.retried == 3
    assert [r.getMessage() for r in caplog.records].count("test: docker working again") == 1
