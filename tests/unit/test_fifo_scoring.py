"""The scorer on a FIFO queue whose groups hold a participant's trials out of order.

Parallel evaluators finish trials out of order, so a participant's score
messages reach the scorer's FIFO group shuffled. A trial whose earlier trials
are evaluated (their score messages wait behind it in the group) goes to the
back of the group at once; the wait of ``defer_seconds`` is only for an
earlier trial that has no evaluation yet. Run through the real worker, a real
indicator container and both FIFO queues (in memory and moto's SQS).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from opthub_runner_admin.executor import Cancelled
from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache
from opthub_runner_admin.jobs.messages import DEFERRALS_KEY, MISSING_KEY
from opthub_runner_admin.jobs.outcome import JobContext, Resend
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.model import Evaluation, Score, Timing, TrialRef
from opthub_runner_admin.platform_side.contract import create_queue, job_body, send_body
from opthub_runner_admin.platform_side.emulators import MotoServer
from opthub_runner_admin.platform_side.shuffled_trials import IndicatorCatalogue, evaluated_trials
from opthub_runner_admin.queue import Message, Queue
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.queue.sqs import SqsQueue
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.worker import Worker, WorkerSettings
from tests.support.docker_fixtures import ExecutorFactory
from tests.support.tiers import using

PARTICIPANTS = 4
TRIALS = 5
#: Long enough that one wait would hold the run far past its bound: a run that ends
#: proves no message of an evaluated trial waited (the log is checked as well).
LONG_DEFER = 600
#: Generous bound for the whole run (a hang fails, it does not wait 600 s a trial).
RUN_BOUND = 240.0
WAIT_LINE = "waits for the results of earlier trials"


@pytest.fixture(params=["memory", using("sqs", "moto_server")])
def fifo_queue(request: pytest.FixtureRequest) -> tuple[Queue, Callable[[str, str], object]]:
    """A FIFO queue and the platform's send (body, group)."""
    if request.param == "memory":
        queue = MemoryQueue(fifo=True)
        return queue, lambda body, group: queue.send(body, group_id=group)
    server: MotoServer = request.getfixturevalue("moto_server")
    clients = server.clients()
    url = create_queue(clients.sqs, f"scorer-{uuid.uuid4().hex[:10]}", fifo=True)
    sqs = SqsQueue(clients.sqs, url)
    sqs.check()
    return sqs, lambda body, group: send_body(clients.sqs, url, body, group=group)


def test_shuffled_groups_are_scored_exactly_without_waiting(
    fifo_queue: tuple[Queue, Callable[[str, str], object]],
    make_executor: ExecutorFactory,
    best_so_far_image: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    queue, send = fifo_queue
    store = MemoryStore()
    # Every evaluation is in the table: their score messages are all in the queue.
    shuffled = evaluated_trials(
        store,
        match=str(uuid.uuid4()),
        participants=PARTICIPANTS,
        trials=TRIALS,
        timing=_timing(),
        seed=22,
        highest=100,
    )
    # Groups interleaved, each group's own order shuffled.
    for ref in shuffled.sends():
        send(job_body(ref), ref.participant_id)

    job = ScoreJob(
        store=store,
        matches=IndicatorCatalogue(indicator=best_so_far_image),
        executor=make_executor(),
        history=HistoryBuilder(store, MemoryHistoryCache()),
        timeout=30,
        max_deferrals=30,
        defer_seconds=LONG_DEFER,
        fifo_queue=True,
    )
    total = PARTICIPANTS * TRIALS
    assert shuffled.total == total
    worker = Worker(
        queue=queue,
        handler=job,
        settings=WorkerSettings(poll_seconds=1, workers=2, max_jobs=total),
        name="scorer",
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    thread.join(RUN_BOUND)
    if thread.is_alive():
        worker.stop(force=True)
        thread.join(30)
        pytest.fail(f"not every trial was scored: {worker.stats}")

    assert WAIT_LINE not in caplog.text
    assert len(store.score_items()) == total
    # Each trial's score is the best objective of the participant's trials up to it.
    assert shuffled.wrong_scores(store) == []
    assert queue.receive(0, 30) is None


def _ref(n: int) -> TrialRef:
    return TrialRef("m-1", "p-1", f"{n:04d}")


def _message(text: str) -> Message:
    return Message("id-1", text, "receipt", 1, time.monotonic())


class _NeverRuns:
    def run(self, spec: object, cancel: threading.Event) -> object:
        raise AssertionError("the indicator must not run while an earlier trial is missing")


def _job(store: MemoryStore, *, fifo: bool) -> ScoreJob:
    return ScoreJob(
        store=store,
        matches=IndicatorCatalogue(indicator="indicator:1"),
        executor=_NeverRuns(),  # type: ignore[arg-type]
        history=HistoryBuilder(store, MemoryHistoryCache()),
        timeout=60,
        max_deferrals=3,
        defer_seconds=LONG_DEFER,
        fifo_queue=fifo,
    )


def _cancelled_context() -> JobContext:
    """A context whose cancel is already set: any wait in the job raises Cancelled at once."""
    cancel = threading.Event()
    cancel.set()
    return JobContext(deadline=time.monotonic() + 3600, cancel=cancel)


def _timing() -> Timing:
    now = datetime.now(timezone.utc)
    return Timing(now, now)


def test_an_evaluated_earlier_trial_sends_the_message_to_the_back_at_once() -> None:
    store = MemoryStore()
    store.put_evaluation(_ref(1), Evaluation(objective=3), _timing())  # scored later
    store.put_evaluation(_ref(2), Evaluation(objective=2), _timing())
    job = _job(store, fifo=True)
    # The context is cancelled: had the job waited, it would raise Cancelled.
    outcome = job(_message(job_body(_ref(2))), _cancelled_context())
    assert isinstance(outcome, Resend) and outcome.delay == 0
    sent = json.loads(outcome.body)
    assert sent[MISSING_KEY] == 1
    assert sent[DEFERRALS_KEY] == 0  # the deferrals that bound a wait are not spent


def test_an_earlier_trial_with_no_evaluation_still_waits_on_a_fifo_queue() -> None:
    store = MemoryStore()
    store.put_evaluation(_ref(2), Evaluation(objective=2), _timing())  # trial 1: nothing yet
    with pytest.raises(Cancelled):
        _job(store, fifo=True)(_message(job_body(_ref(2))), _cancelled_context())


def test_a_copy_back_without_progress_waits_and_spends_a_deferral() -> None:
    # The copy went to the back with one trial missing and came round with it still
    # missing: the earlier trial's score message was not behind it (not enqueued yet,
    # or lost), so it waits as on any missing trial instead of spinning.
    store = MemoryStore()
    store.put_evaluation(_ref(1), Evaluation(objective=3), _timing())
    store.put_evaluation(_ref(2), Evaluation(objective=2), _timing())
    came_round = json.dumps({**json.loads(job_body(_ref(2))), MISSING_KEY: 1})
    with pytest.raises(Cancelled):
        _job(store, fifo=True)(_message(came_round), _cancelled_context())


def test_a_copy_back_with_progress_goes_to_the_back_at_once_again() -> None:
    store = MemoryStore()
    for n in (1, 2, 3):
        store.put_evaluation(_ref(n), Evaluation(objective=n), _timing())
    store.put_score(_ref(1), Score(1), _timing())  # one of the two earlier trials is done
    came_round = json.dumps({**json.loads(job_body(_ref(3))), MISSING_KEY: 2})
    outcome = _job(store, fifo=True)(_message(came_round), _cancelled_context())
    assert isinstance(outcome, Resend) and outcome.delay == 0
    assert json.loads(outcome.body)[MISSING_KEY] == 1


def test_a_standard_queue_still_delays_the_copy() -> None:
    store = MemoryStore()
    store.put_evaluation(_ref(1), Evaluation(objective=3), _timing())
    store.put_evaluation(_ref(2), Evaluation(objective=2), _timing())
    outcome = _job(store, fifo=False)(_message(job_body(_ref(2))), _cancelled_context())
    assert isinstance(outcome, Resend) and outcome.delay == LONG_DEFER
    assert json.loads(outcome.body)[DEFERRALS_KEY] == 1
