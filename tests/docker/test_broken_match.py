"""A broken match costs the others nothing: its missing image is pulled once, then it backs off.

The worker runs on the in-memory queue with a real Docker executor: messages
of a match whose image cannot be pulled (no registry answers on its
address) wait ahead of a healthy match's. What is asserted is state: the
pulls Docker was asked for, that receiving never rested, what each message
came to. (The handler maps the executor's errors to outcomes as the trial
job does: an administrator's error puts the message back and backs the match
off; see ``jobs/trial_job.py``.)
"""

from __future__ import annotations

import threading
import uuid

import docker
import pytest

from opthub_runner_admin.errors import AdminError
from opthub_runner_admin.executor import RunSpec
from opthub_runner_admin.executor.docker import DockerExecutor
from opthub_runner_admin.jobs.admission import Admission
from opthub_runner_admin.jobs.outcome import Cause, Done, JobContext, Outcome, Resend
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.worker import Worker, WorkerSettings
from tests.support.counting_api import ClientOf, CountingApi
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ExecutorFactory, ImageFactory

BROKEN = 6
HEALTHY = 8
#: Longer than the test: a copy sent back with a delay is not seen again here.
RETRY_DELAY = 600


class _Matches:
    """Bodies are ``<match>/<n>``; each match's image is in ``images``."""

    def __init__(self, executor: DockerExecutor, images: dict[str, str]) -> None:
        self.executor = executor
        self.images = images
        self.outcomes: dict[str, str] = {}
        self.lock = threading.Lock()

    def admission(self, message: Message) -> Admission:
        match = message.body.partition("/")[0]
        return Admission(group=None, position=None, causes=(f"match:{match}",))

    def __call__(self, message: Message, ctx: JobContext) -> Outcome:
        match, _, n = message.body.partition("/")
        spec = RunSpec(image=self.images[match], stdin_lines=[n], timeout=30)
        try:
            execution = self.executor.run(spec, ctx.cancel)
        except AdminError as exc:
            self._record(message, "retry")
            return Resend(RETRY_DELAY, str(exc), body=message.body, backoff=Cause(f"match:{match}"))
        self._record(message, execution.stdout.strip())
        return Done("ok")

    def _record(self, message: Message, what: str) -> None:
        with self.lock:
            self.outcomes[message.body] = what


@pytest.mark.parametrize("workers", [1, 4])
def test_a_match_whose_image_cannot_be_pulled_costs_the_healthy_ones_nothing(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    workers: int,
) -> None:
    healthy = image_factory(f"{TEST_IMAGE_PREFIX}broken-match-echo:latest", "read -r n\necho $n\n")
    missing = f"127.0.0.1:1/opthub-test/missing-{uuid.uuid4().hex[:8]}:1"  # nothing listens
    api = CountingApi(docker_client.api)
    executor = make_executor(client=ClientOf(api), prestart=True)
    handler = _Matches(executor, {"broken": missing, "healthy": healthy})
    queue = MemoryQueue()
    for n in range(BROKEN):
        queue.send(f"broken/{n}")
    for n in range(HEALTHY):
        queue.send(f"healthy/{n}")
    settings = WorkerSettings(
        workers=workers,
        poll_seconds=1,
        visibility_window=30,
        backoff_initial=RETRY_DELAY,
        backoff_max=RETRY_DELAY,
        max_jobs=HEALTHY,
    )
    worker = Worker(queue=queue, handler=handler, settings=settings, name="test")
    try:
        stats = worker.run()
    finally:
        executor.close()
    assert {b: o for b, o in handler.outcomes.items() if b.startswith("healthy")} == {
        f"healthy/{n}": str(n) for n in range(HEALTHY)
    }
    broken_tried = [b for b, o in handler.outcomes.items() if o == "retry"]
    # Every broken job that ran failed at once, on at most one pull of its own (no
    # retries inside the job; those that waited for a pull shared it: with several
    # workers, one that started just after a failure pulls once more); the match backed
    # off, its other messages went back without running.
    assert 1 <= len(broken_tried) <= workers
    assert 1 <= api.pulls <= len(broken_tried)
    assert stats.held_back == BROKEN - len(broken_tried)
    assert stats.received == BROKEN + HEALTHY  # each once: delayed copies did not come back
    assert stats.rests == 0  # the copies carry a delay: no rest for the healthy ones
    assert sorted(queue.bodies()) == sorted(f"broken/{n}" for n in range(BROKEN))
