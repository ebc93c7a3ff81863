"""SQS's 12-hour cap on one receipt, shortened: the job ends and writes its result inside it.

The cap is injected (``VisibilityCap``) so that a real container running to
the cap takes seconds, not twelve hours. moto does not enforce the cap, so the
in-memory queue, which does, stands in for SQS; a second consumer polls all
along and must never see the message.
"""

from __future__ import annotations

import json
import threading
import time

from opthub_runner_admin.jobs.evaluate import EvaluateJob
from opthub_runner_admin.jobs.outcome import JobContext, Outcome
from opthub_runner_admin.matches import ImageSpec, MatchSpec
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.worker import Worker, WorkerSettings
from opthub_runner_admin.worker.heartbeat import VisibilityCap

from ..support.docker_fixtures import ExecutorFactory, ImageFactory

CAP = VisibilityCap(seconds=14, job_margin=8, renewal_margin=4)
REF = TrialRef("3b7c0b1e-0000-4000-8000-00000000000c", "p-1", "0001")


class RecordingQueue(MemoryQueue):
    """Remembers how far each renewal pushed the message's visibility (monotonic time)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden_until: list[float] = []

    def extend(self, message: Message, seconds: int) -> None:
        self.hidden_until.append(time.monotonic() + seconds)
        super().extend(message, seconds)


class Catalogue:
    def __init__(self, image: str) -> None:
        self.image = image

    def get(self, match_id: str) -> MatchSpec:
        return MatchSpec(match_id, ImageSpec(self.image, {}), ImageSpec(self.image, {}))


def test_a_job_run_to_the_cap_is_settled_before_the_message_can_be_seen_again(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = image_factory("opthub-test/cap-sleeper:1", "cat >/dev/null\nsleep 600\n")
    queue = RecordingQueue()
    store = MemoryStore()
    store.put_solution(REF, [1])
    queue.send(
        json.dumps(
            {"MatchID": REF.match_id, "ParticipantID": REF.participant_id, "TrialNo": "0001"}
        )
    )
    job = EvaluateJob(store=store, matches=Catalogue(image), executor=make_executor(), timeout=600)
    settings = WorkerSettings(poll_seconds=1, visibility_window=1, max_jobs=1, visibility_cap=CAP)
    received_at: list[float] = []
    started = threading.Event()

    def handler(message: Message, ctx: JobContext) -> Outcome:
        received_at.append(message.received_at)
        started.set()
        return job(message, ctx)

    worker = Worker(queue=queue, handler=handler, settings=settings)
    seen_by_other: list[Message] = []
    done = threading.Event()

    def other_consumer() -> None:
        started.wait(60)  # from the worker's receipt on, the message must stay hidden
        while not done.is_set():
            message = queue.receive(1, 30)
            if message is not None:
                seen_by_other.append(message)

    other = threading.Thread(target=other_consumer, daemon=True)
    other.start()
    try:
        stats = worker.run()
    finally:
        done.set()
        other.join(10)

    assert stats.done == 1, stats
    (item,) = store.evaluation_items()
    assert item["Status"] == "Failed" and "timed out" in item["ErrorMessage"]
    assert seen_by_other == []
    assert queue.bodies() == []
    # Every renewal stayed inside the cap by its margin (computed, not measured).
    assert queue.hidden_until
    assert max(queue.hidden_until) <= received_at[0] + CAP.seconds - CAP.renewal_margin
