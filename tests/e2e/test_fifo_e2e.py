"""Both modes on an SQS FIFO queue (moto): evaluation, administrator errors, deferral.

A FIFO queue needs a MessageGroupId on every send and refuses per-message
delays; the runner learns the queue's kind at start-up and puts messages back
into their own group with a fresh deduplication id.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from opthub_runner_admin.model import Evaluation, Timing, TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import job_body, put_solution, send_job
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.store.dynamodb import DynamoStore

from ..support.aws_fixtures import on_each_emulator
from ..support.e2e import make_worker, result_item, run_until_retried

GROUP = "participant-p-1"
TIMING = Timing(
    datetime(2026, 11, 25, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc)
)


@pytest.fixture
def fifo_url(aws: AwsStack) -> Iterator[str]:
    """A FIFO queue without content-based deduplication (every send needs its own id)."""
    url = aws.new_queue("runner", fifo=True)
    yield url
    aws.clients.sqs.delete_queue(QueueUrl=url)


def send(aws: AwsStack, url: str, ref: TrialRef) -> str:
    """What the platform sends to a FIFO queue; returns the message's id."""
    return send_job(aws.clients.sqs, url, ref, group=GROUP)


@on_each_emulator
def test_evaluator_on_a_fifo_queue_evaluates_and_puts_back_into_the_group(
    tmp_path: Path, aws: AwsStack, fifo_url: str, sphere_image: str, case_labels: dict[str, str]
) -> None:
    good, broken = str(uuid.uuid4()), str(uuid.uuid4())
    matches = {good: match_entry(sphere_image), broken: match_entry("opthub-test/absent:1")}
    config = write_config(tmp_path, aws, matches, evaluator_queue_url=fifo_url)
    ok = TrialRef(good, "p-1", "0001")
    put_solution(aws.clients.dynamodb, aws.table_name, ok, [1, 2])
    send(aws, fifo_url, ok)
    assert make_worker("evaluator", config, case_labels, num=1).run().done == 1
    assert result_item(aws, "Evaluations", ok)["Objective"] == Decimal(5)

    # The administrator's mistake (an image that is not there): resent, not lost.
    stuck = TrialRef(broken, "p-1", "0001")
    put_solution(aws.clients.dynamodb, aws.table_name, stuck, [1])
    original = send(aws, fifo_url, stuck)
    worker = make_worker("evaluator", config, case_labels)
    run_until_retried(worker, times=1)
    response = aws.clients.sqs.receive_message(
        QueueUrl=fifo_url,
        WaitTimeSeconds=1,
        MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
    )
    (copy,) = response["Messages"]
    assert copy["Body"] == job_body(stuck)
    # A fresh copy in the same group (a failed send would leave the original in flight).
    assert copy["Attributes"]["MessageGroupId"] == GROUP
    # The runner goes on receiving while only that match backs off, so it may have
    # received the copy once more (and handed it back when stopped): the copy's id,
    # not its receive count, shows it is a fresh message.
    assert copy["MessageId"] != original
    assert int(copy["Attributes"]["ApproximateReceiveCount"]) <= 2


@on_each_emulator
def test_scorer_on_a_fifo_queue_defers_until_the_earlier_trial_is_scored(
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
        defer_seconds=1,
    )
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    first, second = TrialRef(match, "p-1", "0001"), TrialRef(match, "p-1", "0002")
    store.put_evaluation(first, Evaluation(objective=4), TIMING)
    store.put_evaluation(second, Evaluation(objective=6), TIMING)
    # Trial 2's evaluation finished first: its score message is at the head of the group.
    send(aws, fifo_url, second)
    worker = make_worker("scorer", config, case_labels, num=2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while worker.stats.retried < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker.stats.retried >= 2, "the deferral did not come back through the group"
    # Trial 1's score message lands in the same group, behind trial 2's copy.
    send(aws, fifo_url, first)
    thread.join(90)
    assert not thread.is_alive()
    assert result_item(aws, "Scores", first)["Value"] == Decimal(4)
    # Trial 2 was scored with trial 1 in its history: best so far is 4, not 6.
    assert result_item(aws, "Scores", second)["Value"] == Decimal(4)
