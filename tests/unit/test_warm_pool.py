"""``WarmPool``: each container started ahead serves one job, concurrent jobs do not queue
one behind another for it, containers are kept per key within bounds, and none leaks."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from opthub_runner_admin.executor.docker.streams import Attachment
from opthub_runner_admin.executor.docker.warm import IDLE_AFTER, SPARE_KEYS, LiveContainer, WarmPool


def _container(name: str) -> LiveContainer:
    ours, theirs = socket.socketpair()
    return LiveContainer(
        name, Attachment(response_socket=theirs, sock=ours, output_limit=1024), started=True
    )


def test_a_second_job_does_not_wait_for_the_container_the_first_one_claims() -> None:
    release = threading.Event()
    discarded: list[str] = []
    pool = WarmPool(discard=lambda container: discarded.append(container.name))
    pool.fit("key", 2, 2)

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


def _pool(discarded: list[str], **kwargs: Any) -> WarmPool:
    return WarmPool(discard=lambda container: discarded.append(container.name), **kwargs)


def test_interleaved_matches_each_keep_their_container() -> None:
    discarded: list[str] = []
    pool = _pool(discarded)
    keys = ["a", "b", "c"]
    try:
        for key in keys:  # each match's first job: a start ahead for its next one
            pool.fit(key, 1, 1)
            assert pool.take(key) is None
            pool.prepare(key, lambda key=key: _container(key))  # type: ignore[misc]
        for _ in range(3):  # round robin: every job finds its own container
            for key in keys:
                taken = pool.take(key)
                assert taken is not None and taken.name == key
                pool.prepare(key, lambda key=key: _container(key))  # type: ignore[misc]
    finally:
        pool.close()
    counts = pool.counts
    assert (counts.started, counts.reused, counts.evicted, counts.expired) == (12, 9, 0, 0)
    assert sorted(discarded) == keys  # the last three, at the close: nothing leaks


def test_jobs_in_a_row_that_found_their_container_keep_one_more_on_its_way() -> None:
    discarded: list[str] = []
    pool = _pool(discarded)
    pool.fit("key", 1, 1)  # one worker
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


def test_a_key_run_several_at_once_keeps_no_extra_one_on_its_way() -> None:
    """Its runs already overlap their starts: an extra one would only be left unused."""
    discarded: list[str] = []
    pool = _pool(discarded)
    pool.fit("key", 3, 3)  # three workers, all on this match
    try:
        for _ in range(3):
            _hit(pool, "key")  # a streak, which alone would earn one more
        for _ in range(5):
            pool.prepare("key", lambda: _container("key"))
        _started(pool, 3 + 3)
        taken = [pool.take("key") for _ in range(4)]
        assert [found is not None for found in taken] == [True, True, True, False]
    finally:
        pool.close()
    assert discarded == []


def _started(pool: WarmPool, count: int) -> None:
    """Wait until ``count`` containers were started ahead (the starts run in threads)."""
    deadline = time.monotonic() + 30
    while pool.counts.started < count:
        assert time.monotonic() < deadline, f"only {pool.counts.started} of {count} started"
        time.sleep(0.01)


def test_a_switch_of_match_removes_at_most_one_container_and_the_total_is_bounded() -> None:
    discarded: list[str] = []
    pool = _pool(discarded)
    pool.fit("a", 1, 1)  # one worker: at most 1 + SPARE_KEYS warm containers
    try:
        for _ in range(3):
            _hit(pool, "a")
        pool.prepare("a", lambda: _container("a"))
        pool.prepare("a", lambda: _container("a"))  # a streak: two of "a" kept
        started = 5
        _started(pool, started)
        new_keys = [f"k{i}" for i in range(SPARE_KEYS + 2)]
        for key in new_keys:
            before = len(discarded)
            assert pool.take(key) is None  # another match's first job
            pool.prepare(key, lambda key=key: _container(key))  # type: ignore[misc]
            started += 1
            _started(pool, started)
            assert len(discarded) - before <= 1  # at most one start wasted per switch
        # The extra "a" went first, then the key seen longest ago: both "a", then k0.
        assert discarded == ["a", "a", "k0"]
        last = new_keys[-1]
        assert pool.take(last) is not None
        pool.prepare(last, lambda: _container(last))  # room: the take freed one
        _started(pool, started + 1)
        pool.fit(last, 2, 1)  # two of its jobs ran at once: it would keep two
        pool.prepare(last, lambda: _container("second"))  # but not by removing another's
        assert discarded == ["a", "a", "k0"]
    finally:
        pool.close()
    counts = pool.counts
    assert counts.started == started + 1  # "second" never started
    assert counts.closed == 1 + SPARE_KEYS  # the bound held to the end
    assert counts.evicted == 3
    assert len(discarded) == counts.started - counts.reused  # every unused one removed


def test_the_containers_of_a_match_not_seen_for_a_while_are_removed() -> None:
    now = [0.0]
    discarded: list[str] = []
    pool = _pool(discarded, clock=lambda: now[0])
    try:
        pool.prepare("old", lambda: _container("old"))
        assert pool.take("old") is not None
        pool.prepare("old", lambda: _container("old"))
        pool.prepare("new", lambda: _container("new"))
        now[0] = IDLE_AFTER / 2
        _hit(pool, "new")  # "new" is seen, "old" is not
        pool.prepare("new", lambda: _container("new"))
        _started(pool, 4)
        pool.sweep()
        assert discarded == []
        now[0] = IDLE_AFTER + 1
        pool.sweep()  # what the idle runner's sweeping thread calls
        assert discarded == ["old"]
        assert pool.counts.expired == 1
    finally:
        pool.close()
    assert sorted(discarded) == ["new", "old"]


def test_containers_on_their_way_at_the_close_are_discarded_not_leaked() -> None:
    discarded: list[str] = []
    release = threading.Event()
    pool = _pool(discarded)

    def start_slowly() -> LiveContainer:
        release.wait(60)
        return _container("slow")

    pool.fit("key", 1, 1)
    for _ in range(2):
        _hit(pool, "key")  # a streak: one more may be on its way
    pool.prepare("key", lambda: _container("ready"))
    pool.prepare("key", start_slowly)  # the extra one, still starting
    closing = threading.Thread(target=pool.close)
    closing.start()
    release.set()
    closing.join(60)  # and the one that was starting, once it has started
    assert sorted(discarded) == ["ready", "slow"]
    assert pool.counts.closed == 2


def test_standing_by_removes_every_waiting_container_and_starts_none() -> None:
    discarded: list[str] = []
    pool = _pool(discarded)
    release = threading.Event()
    try:
        pool.fit("a", 1, 1)
        pool.prepare("a", lambda: _container("a"))
        assert pool.take("a") is not None  # "a" starts: the next one may be started ahead
        pool.prepare("a", lambda: _container("a-ready"))
        pool.fit("b", 1, 1)

        def start_slowly() -> LiveContainer:
            release.wait(60)
            return _container("b-starting")

        pool.prepare("b", start_slowly)
        # Paused: each goes, removed now if ready, else once it is up.
        pool.stand_by(True)
        release.set()
        assert pool.take("b") is None and pool.take("a") is None
        pool.prepare("a", lambda: _container("while-standing-by"))
        assert pool.take("a") is None  # nothing was started while standing by

        pool.stand_by(False)
        pool.prepare("a", lambda: _container("after"))
        taken = pool.take("a")
        assert taken is not None and taken.name == "after"
    finally:
        pool.close()
    assert sorted(discarded) == ["a-ready", "b-starting"]
    assert pool.counts.stood_down == 2
