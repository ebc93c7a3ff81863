"""The scorer on a FIFO queue with each participant's trials shuffled in its group.

Every trial is evaluated before its score message is sent (as the evaluator
does), so a trial that finds earlier trials unscored has their score messages
behind it in its own group: it must go behind them at once, never wait
``defer_seconds`` in a slot. The tests set ``defer_seconds`` long and assert on
state: every score exact, and no deferral wait at all.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from opthub_runner_admin.demo.stack import job_body
from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.model import Evaluation, Timing, TrialRef
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.store import Store
from opthub_runner_admin.store.dynamodb import DynamoStore
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.worker.loop import Worker
from opthub_runner_admin.worker.stats import WorkerSettings

from .support.aws_fixtures import AwsStack
from .support.e2e import make_worker, match_entry, result_item, write_config
from .support.scoring import BestSoFar, OneMatch, expected_score, objective

START = datetime(2026, 12, 4, tzinfo=timezone.utc)
TIMING = Timing(START, START)
#: Long enough that a single wait would stand out; the tests stop at the first one.
DEFER_SECONDS = 30


def shuffled_trials(participants: int, trials: int, seed: int) -> list[tuple[int, list[int]]]:
    order = random.Random(seed)
    plan = []
    for participant in range(participants):
        numbers = list(range(1, trials + 1))
        order.shuffle(numbers)
        plan.append((participant, numbers))
    return plan


def evaluate_all(store: Store, match: str, plan: list[tuple[int, list[int]]]) -> None:
    for participant, numbers in plan:
        for trial in numbers:
            ref = TrialRef(match, f"p-{participant}", str(trial).zfill(4))
            store.put_evaluation(ref, Evaluation(objective=objective(participant, trial)), TIMING)


def run_until_scored(
    worker: Worker, job: ScoreJob, scored: Callable[[], int], total: int, limit: float = 120
) -> None:
    """Run until every trial is scored; stop early at the first deferral wait (a failure)."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + limit
    try:
        while scored() < total and job.waits == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop(force=True)
        thread.join(60)
    assert not thread.is_alive()


def test_a_shuffled_fifo_queue_is_scored_exactly_without_a_wait_in_memory() -> None:
    match = str(uuid.uuid4())
    plan = shuffled_trials(participants=5, trials=6, seed=22)
    store = MemoryStore()
    evaluate_all(store, match, plan)
    queue = MemoryQueue(fifo=True)
    for participant, numbers in plan:
        for trial in numbers:
            ref = TrialRef(match, f"p-{participant}", str(trial).zfill(4))
            queue.send(job_body(ref), group_id=f"p-{participant}")
    job = ScoreJob(
        store=store,
        matches=OneMatch(),
        executor=BestSoFar(),
        history=HistoryBuilder(store, MemoryHistoryCache()),
        timeout=60,
        max_deferrals=1,
        defer_seconds=DEFER_SECONDS,
        fifo_queue=True,
    )
    worker = Worker(queue=queue, handler=job, settings=WorkerSettings(poll_seconds=1, workers=2))
    total = sum(len(numbers) for _, numbers in plan)
    run_until_scored(worker, job, lambda: len(store.score_items()), total)
    assert job.waits == 0, "a trial waited in its slot for trials behind it in its group"
    # More rotations than the bound on deferrals: they are not counted as deferrals.
    assert job.rotations > 1
    found = {
        (str(item["ID"]), item["Trial"], item["Status"]): item["Value"]
        for item in store.score_items()
    }
    assert found == {
        (
            f"Scores#Match#{match}#p-{participant}",
            f"Success#{str(trial).zfill(4)}",
            "Success",
        ): Decimal(expected_score(participant, trial))
        for participant, numbers in plan
        for trial in numbers
    }


@pytest.fixture
def fifo_url(aws: AwsStack) -> Iterator[str]:
    url = aws.clients.sqs.create_queue(
        QueueName=f"scorer-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    yield url
    aws.clients.sqs.delete_queue(QueueUrl=url)


def test_a_shuffled_fifo_queue_is_scored_exactly_without_a_wait_on_moto(
    tmp_path: Path,
    aws: AwsStack,
    fifo_url: str,
    best_so_far_image: str,
    case_labels: dict[str, str],
) -> None:
    match = str(uuid.uuid4())
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry("opthub-test/unused:1", best_so_far_image)},
        scorer_queue_url=fifo_url,
        defer_seconds=DEFER_SECONDS,
        max_deferrals=2,
        workers=2,
    )
    plan = shuffled_trials(participants=3, trials=4, seed=21)
    evaluate_all(DynamoStore(aws.clients.dynamodb, aws.table_name), match, plan)
    for participant, numbers in plan:
        for trial in numbers:
            ref = TrialRef(match, f"p-{participant}", str(trial).zfill(4))
            aws.clients.sqs.send_message(
                QueueUrl=fifo_url,
                MessageBody=job_body(ref),
                MessageGroupId=f"p-{participant}",
                MessageDeduplicationId=uuid.uuid4().hex,
            )
    worker = make_worker("scorer", config, case_labels)
    job = worker.handler
    assert isinstance(job, ScoreJob) and job.fifo_queue
    total = sum(len(numbers) for _, numbers in plan)
    run_until_scored(worker, job, lambda: worker.stats.done, total)
    assert job.waits == 0, "a trial waited in its slot for trials behind it in its group"
    assert job.rotations > 2  # more than the bound on deferrals
    for participant, numbers in plan:
        for trial in numbers:
            ref = TrialRef(match, f"p-{participant}", str(trial).zfill(4))
            item = result_item(aws, "Scores", ref)
            assert item["Status"] == "Success"
            assert item["Value"] == Decimal(expected_score(participant, trial)), (ref, item)
