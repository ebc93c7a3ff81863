"""The worker's admission rules on their own: per-group cap, order in a group, backoff per cause."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from opthub_runner_admin.jobs.admission import Admission
from opthub_runner_admin.worker.backoff import Backoffs
from opthub_runner_admin.worker.gate import Gate


@dataclass(eq=False)
class Item:
    admission: Admission


def item(group: str | None, position: int | None = None) -> Item:
    return Item(Admission(group=group, position=position))


def test_the_cap_holds_per_group_and_one_waiter_per_group_stays() -> None:
    gate: Gate[Item] = Gate(max_per_group=2)
    a1, a2, a3, a4, b1 = item("a"), item("a"), item("a"), item("a"), item("b")
    assert gate.offer(a1).start and gate.offer(a2).start
    third = gate.offer(a3)
    assert not third.start and third.back == []  # waits here
    fourth = gate.offer(a4)
    assert not fourth.start and fourth.back == [a4]  # a second waiter goes back
    assert gate.offer(b1).start  # other groups are not held up
    assert gate.finished(a1) == [a3]
    assert gate.finished(a2) == []


def test_no_group_means_no_limit() -> None:
    gate: Gate[Item] = Gate(max_per_group=1)
    assert all(gate.offer(item(None)).start for _ in range(5))


def test_a_later_position_waits_for_an_earlier_one_held_here() -> None:
    gate: Gate[Item] = Gate()
    t1, t2, t3 = item("p", 1), item("p", 2), item("p", 3)
    other = item("q", 2)
    assert gate.offer(t1).start
    assert not gate.offer(t2).start
    assert gate.offer(t3).back == [t3]
    assert gate.offer(other).start  # another participant runs in parallel
    assert gate.finished(t1) == [t2]
    assert gate.offer(t3).back == []  # t3 now waits for t2 here
    assert gate.finished(t2) == [t3]


def test_an_earlier_position_displaces_a_later_waiter() -> None:
    gate: Gate[Item] = Gate()
    t1, t2, t3 = item("p", 1), item("p", 2), item("p", 3)
    assert gate.offer(t1).start
    assert not gate.offer(t3).start
    decision = gate.offer(t2)
    assert not decision.start and decision.back == [t3]
    assert gate.finished(t1) == [t2]


def test_a_duplicate_of_a_running_position_waits_for_it() -> None:
    gate: Gate[Item] = Gate()
    first, duplicate = item("p", 1), item("p", 1)
    assert gate.offer(first).start
    assert not gate.offer(duplicate).start
    assert gate.finished(first) == [duplicate]


def test_an_earlier_position_than_everything_held_starts_at_once() -> None:
    gate: Gate[Item] = Gate()
    assert gate.offer(item("p", 5)).start
    assert gate.offer(item("p", 2)).start


def test_take_waiting_empties_the_waiters() -> None:
    gate: Gate[Item] = Gate(max_per_group=1)
    running, waiting = item("a"), item("a")
    gate.offer(running)
    gate.offer(waiting)
    assert gate.take_waiting() == [waiting]
    assert gate.finished(running) == []


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Gate(max_per_group=0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cause_backs_off_doubling_and_blocks_only_its_own_keys() -> None:
    clock = Clock()
    backoffs = Backoffs(initial=5, maximum=12, clock=clock)
    assert backoffs.failed("match:bad") == 5
    assert backoffs.blocking(["match:bad"]) == ("match:bad", 5)
    assert backoffs.blocking(["match:good"]) is None
    clock.now += 5
    assert backoffs.blocking(["match:bad"]) is None  # the pause is over: one probe
    backoffs.started(["match:bad"])
    assert backoffs.blocking(["match:bad"]) is not None  # the others wait for the probe
    assert backoffs.failed("match:bad") == 10
    clock.now += 10
    backoffs.started(["match:bad"])
    assert backoffs.failed("match:bad") == 12  # capped
    assert backoffs.succeeded(["match:bad", "match:good"]) == ["match:bad"]
    assert backoffs.blocking(["match:bad"]) is None
    assert backoffs.failed("match:bad") == 5  # a success started it afresh


def test_a_probe_that_decides_nothing_lets_the_next_through() -> None:
    clock = Clock()
    backoffs = Backoffs(initial=1, maximum=10, clock=clock)
    backoffs.failed("docker")
    clock.now += 1
    backoffs.started(["docker"])
    assert backoffs.blocking(["docker"]) is not None
    backoffs.probe_ended(["docker"])
    assert backoffs.blocking(["docker"]) is None
    assert backoffs.remaining("docker") == 0


def test_a_probe_running_longer_than_the_pause_lets_another_through() -> None:
    # A probe job of hours must not hold every other message of its cause back.
    clock = Clock()
    backoffs = Backoffs(initial=5, maximum=60, clock=clock)
    backoffs.failed("docker")
    clock.now += 5
    backoffs.started(["docker"])
    clock.now += 4
    assert backoffs.probing("docker")
    assert backoffs.blocking(["docker"]) is not None
    clock.now += 2  # the probe has now run longer than the 5 s pause
    assert not backoffs.probing("docker")
    assert backoffs.blocking(["docker"]) is None
    backoffs.started(["docker"])  # the next one goes out as a probe in its turn
    assert backoffs.blocking(["docker"]) is not None


def test_work_started_before_a_pause_neither_doubles_nor_ends_it() -> None:
    clock = Clock()
    backoffs = Backoffs(initial=5, maximum=60, clock=clock)
    early = [backoffs.started(["docker"]) for _ in range(3)]  # running as the fault comes
    clock.now += 1
    assert backoffs.failed("docker", started_at=early[0]) == 5
    assert backoffs.failed("docker", started_at=early[1]) is None  # the same fault
    assert backoffs.succeeded(["docker"], started_at=early[2]) == []  # done before it
    backoffs.probe_ended(["docker"], started_at=early[2])
    assert backoffs.remaining("docker") == 5
    clock.now += 5
    probe = backoffs.started(["docker"])
    backoffs.probe_ended(["docker"], started_at=early[2])  # not the probe: it still runs
    assert backoffs.probing("docker")
    assert backoffs.failed("docker", started_at=probe) == 10  # the probe failed: doubles
    clock.now += 10
    probe = backoffs.started(["docker"])
    assert backoffs.succeeded(["docker"], started_at=probe) == ["docker"]
