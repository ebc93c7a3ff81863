"""``WarmPool``: each container started ahead serves one job, and concurrent jobs do not
queue one behind another for it (``workers`` > 1 with ``prestart``)."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from opthub_runner_admin.executor.docker.streams import Attachment
from opthub_runner_admin.executor.docker.warm import LiveContainer, WarmPool


def _container(name: str) -> LiveContainer:
    ours, theirs = socket.socketpair()
    return LiveContainer(
        name, Attachment(response_socket=theirs, sock=ours, output_limit=1024), started=True
    )


def test_a_second_job_does_not_wait_for_the_container_the_first_one_claims() -> None:
    release = threading.Event()
    discarded: list[str] = []
    pool = WarmPool(discard=lambda container: discarded.append(container.name))
    pool.fit(2)

    def start_slowly() -> LiveContainer:
        release.wait(120)
        return _container("ahead")

    pool.prepare("key", start_slowly)  # one container on its way, for two jobs
    with ThreadPoolExecutor(2) as jobs:
        takes = [jobs.submit(pool.take, "key") for _ in range(2)]
        done, _ = wait(takes, timeout=20, return_when=FIRST_COMPLETED)
        finished_while_starting = [take.result() for take in done]
        release.set()
        found = [take.result(60) for take in takes]
    pool.close()
    # One job went on (to start its own container) while the other's was still starting.
    assert finished_while_starting == [None]
    assert sorted(c.name if c else "" for c in found) == ["", "ahead"]
    assert discarded == []


def test_a_job_takes_a_ready_container_of_its_key_and_discards_the_others() -> None:
    discarded: list[str] = []
    pool = WarmPool(discard=lambda container: discarded.append(container.name))
    pool.fit(2)
    pool.prepare("old", lambda: _container("old-1"))
    pool.prepare("new", lambda: _container("new-1"))
    taken = pool.take("new")
    assert taken is not None and taken.name == "new-1"
    assert pool.take("new") is None  # each container serves one job
    pool.close()
    assert discarded == ["old-1"]  # at the take, or at the close if it was still starting


def _starts_offered_then_taken(pool: WarmPool, key: str) -> int:
    """Offer three starts ahead for ``key``, then take until none is left: how many started."""
    for _ in range(3):
        pool.prepare(key, lambda: _container(key))
    found = 0
    while pool.take(key) is not None:  # waits for each one still on its way
        found += 1
    return found


def _hit(pool: WarmPool, key: str) -> None:
    """One job of ``key`` finds the container started ahead for it."""
    pool.prepare(key, lambda: _container(key))
    assert pool.take(key) is not None


def test_jobs_in_a_row_that_found_their_container_keep_one_more_on_its_way() -> None:
    discarded: list[str] = []
    pool = WarmPool(discard=lambda container: discarded.append(container.name))
    pool.fit(1)  # one worker
    try:
        _hit(pool, "key")
        # One hit: as many on their way as runs at once.
        assert _starts_offered_then_taken(pool, "key") == 1
        # (the last take of the count found nothing: a miss). Two hits in a row:
        _hit(pool, "key")
        _hit(pool, "key")
        assert _starts_offered_then_taken(pool, "key") == 2
    finally:
        pool.close()
    assert discarded == []


def test_a_job_of_another_key_drops_the_extra_container() -> None:
    discarded: list[str] = []
    pool = WarmPool(discard=lambda container: discarded.append(container.name))
    pool.fit(1)
    try:
        for _ in range(3):
            _hit(pool, "key")
        assert pool.take("other") is None  # another match's job: a miss
        # Back to as many as runs at once: interleaved matches waste one start, not two.
        assert _starts_offered_then_taken(pool, "key") == 1
    finally:
        pool.close()
    assert discarded == []


def test_containers_on_their_way_at_a_switch_of_key_are_discarded_not_leaked() -> None:
    discarded: list[str] = []
    release = threading.Event()
    pool = WarmPool(discard=lambda container: discarded.append(container.name))
    pool.fit(1)

    def start_slowly() -> LiveContainer:
        release.wait(60)
        return _container("slow")

    try:
        pool.prepare("key", lambda: _container("ready"))
        for _ in range(2):
            _hit(pool, "key")  # a streak: one more may be on its way
        pool.prepare("key", lambda: _container("ready"))
        pool.prepare("key", start_slowly)  # the extra one, still starting
        assert pool.take("other") is None  # another match: the ready one goes now
        release.set()
    finally:
        pool.close()  # and the one that was starting, once it has started
    assert sorted(discarded) == ["ready", "slow"]
