"""docker-py's connection pool, sized by ``connect_docker(workers=N)``, holds N concurrent jobs.

docker-py keeps one urllib3 pool per request URL, path and query included
(``UnixHTTPAdapter.get_connection``), and at most 25 such pools, closing the
least recently used. A container's own calls (create, attach, start, wait,
remove) each have a URL of their own, so they never share a pool. What
concurrent jobs of one match do share is the image's inspect
(``GET /images/<image>/json``, asked by every job to key its container
started ahead). When more of those return at once than the pool holds,
urllib3 closes the extra connections and logs "Connection pool is full,
discarding connection" on ``urllib3.connectionpool``. Started together,
four such jobs over three rounds logged it in every run with a pool of 2,
in two runs of three with a pool of 3, never with 4 or more: the need is
about one connection per job, which the runner's sizing covers with room.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pytest

from opthub_runner_admin.executor import RunSpec
from opthub_runner_admin.executor.docker import DockerExecutor, connect_docker, runner_labels
from opthub_runner_admin.executor.docker.connection import pool_size
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ImageFactory

WORKERS = 4
ROUNDS = 3
#: Reads its job, then prints the host's uptime (``/proc/uptime`` is not namespaced)
#: when it started working and when it ended, two seconds later: the run's own span
#: (long enough that four runs overlap however slowly a busy daemon starts them).
NAP_SCRIPT = (
    "IFS= read -r line\n"
    "read -r up _ < /proc/uptime\n"
    "sleep 2\n"
    "read -r down _ < /proc/uptime\n"
    'echo "$line $up $down"\n'
)
DISCARDED = "Connection pool is full"


def test_concurrent_jobs_never_overflow_dockers_connection_pool(
    image_factory: ImageFactory, case_labels: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}pool-nap:latest", NAP_SCRIPT)
    client = connect_docker(workers=WORKERS)  # as the runner builds it for `workers: 4`
    # The size asked for is the size docker-py's pools get (one pool per URL).
    adapter = client.api.get_adapter("http+docker://localhost/version")
    assert adapter.max_pool_size == pool_size(WORKERS) >= WORKERS
    executor = DockerExecutor(
        client=client, labels={**runner_labels("test"), **case_labels}, prestart=True
    )
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    start_together = threading.Barrier(WORKERS)
    outputs: list[str] = []
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start_together.wait(30)
            for round_ in range(ROUNDS):
                spec = RunSpec(image=image, stdin_lines=[f"w{n}r{round_}"], timeout=30.0)
                outputs.append(executor.run(spec, threading.Event()).stdout)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        executor.close()
        client.close()
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    discarded = [r.getMessage() for r in caplog.records if DISCARDED in r.getMessage()]
    assert discarded == []
    # Each job ran in its own container, and the runs really overlapped.
    jobs = sorted(line.split()[0] for line in outputs)
    assert jobs == sorted(f"w{n}r{r}" for n in range(WORKERS) for r in range(ROUNDS))
    spans = [tuple(Decimal(x) for x in line.split()[1:]) for line in outputs]
    assert _most_at_once(spans) >= WORKERS - 1


def _most_at_once(spans: list[tuple[Decimal, ...]]) -> int:
    """The largest number of spans covering one instant (an end before a start at a tie)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most
