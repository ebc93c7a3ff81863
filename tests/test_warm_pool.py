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
