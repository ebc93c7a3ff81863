"""The worker's holds (paused, login needed) on the in-memory queue: no new job, the rest on."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from opthub_runner_admin.observe.events import NoEvents
from opthub_runner_admin.observe.holds import LOGIN_NEEDED, PAUSED, Hold
from opthub_runner_admin.platform_side.runners import wait_for
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.worker import Worker
from opthub_runner_admin.worker.hold import Holds

from .test_worker_concurrency import FAST, Keyed, blocked_until, send, start


def held_worker(queue: MemoryQueue, handler: Keyed, holds: Holds, **changes: Any) -> Worker:
    settings = replace(FAST, **changes)
    return Worker(queue=queue, handler=handler, settings=settings, name="test", holds=holds)


class Heard(NoEvents):
    def __init__(self) -> None:
        self.changes: list[tuple[str, ...]] = []

    def holds_changed(self, holds: Mapping[str, Hold]) -> None:
        self.changes.append(tuple(holds))


def test_a_hold_lets_the_running_jobs_finish_and_takes_no_new_one() -> None:
    queue = MemoryQueue()
    send(queue, *(f"g{n}/1" for n in range(6)))
    release = threading.Event()
    handler = Keyed(blocked_until(release))
    holds = Holds(name="test")
    worker = held_worker(queue, handler, holds, workers=2, max_jobs=6)
    thread, errors = start(worker)
    wait_for(lambda: handler.count_started() == 2, 10, "two jobs running")

    assert holds.hold(PAUSED, "for the test")
    assert not holds.hold(PAUSED, "again")  # said once
    release.set()
    wait_for(lambda: worker.stats.done == 2, 10, "the two running jobs to finish")
    # Held: the four others stay in the queue, none is taken (polls would take them).
    wait_for(lambda: queue.in_flight_count() == 0, 10, "nothing held")
    assert queue.visible_count() == 4 and handler.count_started() == 2

    assert holds.release(PAUSED)
    thread.join(20)
    assert not thread.is_alive() and not errors
    assert worker.stats.done == 6
    assert sorted(handler.started) == sorted(f"g{n}/1" for n in range(6))  # each once


def test_waiters_of_a_group_go_back_when_a_hold_starts() -> None:
    queue = MemoryQueue()
    send(queue, "a/1", "a/2")
    release = threading.Event()
    handler = Keyed(blocked_until(release), ordered=True)
    holds = Holds(name="test")
    worker = held_worker(queue, handler, holds, workers=2, max_jobs_per_group=1)
    thread, _ = start(worker)
    wait_for(lambda: handler.count_started() == 1, 10, "a/1 running")
    wait_for(lambda: queue.in_flight_count() == 2, 10, "a/2 held, waiting for its turn")

    holds.hold(LOGIN_NEEDED, "the login ended")
    # The waiter goes back at once; the running one goes on.
    wait_for(lambda: queue.visible_count() == 1, 10, "a/2 back in the queue")
    release.set()
    wait_for(lambda: worker.stats.done == 1, 10, "a/1 finished")
    assert handler.started == ["a/1"]

    holds.release(LOGIN_NEEDED)
    wait_for(lambda: worker.stats.done == 2, 10, "a/2 done after the hold")
    worker.stop()
    thread.join(20)
    assert handler.started == ["a/1", "a/2"]


def test_holds_tell_the_observers_and_the_listeners_each_change() -> None:
    heard = Heard()
    holds = Holds(name="test", events=heard, clock=lambda: 100.0)
    told: list[tuple[str, ...]] = []
    holds.listen(lambda on: told.append(tuple(on)))

    holds.hold(PAUSED, "maintenance")
    holds.hold(LOGIN_NEEDED, "login ended")
    holds.release(PAUSED)
    holds.release(PAUSED)  # not on: nothing to tell

    assert heard.changes == told == [("paused",), ("paused", "login needed"), ("login needed",)]
    assert holds.on[LOGIN_NEEDED] == Hold(LOGIN_NEEDED, "login ended", 100.0)
    assert holds.held()
