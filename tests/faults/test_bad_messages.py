"""Bad messages: never a crash or a stall; each handled as docs/guarantees.md says, and counted.

| message | what happens |
|---|---|
| not JSON, or no MatchID/ParticipantID/TrialNo | logged with an excerpt, counted, deleted |
| the solution is not in the table | made visible again, up to 5 receives, then logged and deleted |
| unknown match | administrator error: resent (fresh copy), runner backs off |

Keys longer than DynamoDB accepts in a key attribute count as "without a key":
no request with them could ever succeed.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.jobs.trial_job import MISSING_INPUT_RECEIVES
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import job_body, put_solution, send_job
from opthub_runner_admin.platform_side.runners import wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts, scan_results
from tests.support.docker_fixtures import containers_labelled
from tests.support.e2e import items, make_worker, result_item

from .helpers import new_match, submit


def _max_message_size(aws: AwsStack) -> int:
    attributes = aws.clients.sqs.get_queue_attributes(
        QueueUrl=aws.evaluator_queue_url, AttributeNames=["MaximumMessageSize"]
    )["Attributes"]
    return int(attributes["MaximumMessageSize"])


def _bad_bodies(match: str, size: int) -> dict[str, str]:
    """Bodies that can never succeed, the enormous ones just under the queue's size limit."""
    key = {"MatchID": match, "ParticipantID": "p-1", "TrialNo": "0001"}
    return {
        "not JSON": "this is {not JSON",
        "JSON but not an object": "[1, 2, 3]",
        "a key missing": json.dumps({"MatchID": match, "ParticipantID": "p-1"}),
        "a key null": json.dumps({**key, "TrialNo": None}),
        "a key of the wrong type": json.dumps({**key, "ParticipantID": {"id": 1}}),
        "enormous, not JSON": "x" * (size - 1024),
        "enormous, nested past any recursion limit": "[" * (size - 1024),
        "enormous key DynamoDB cannot hold": json.dumps(
            {**key, "ParticipantID": "p" * (size - 1024)}
        ),
    }


def test_bad_messages_are_dropped_and_counted_and_good_ones_still_pass(
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    match, unknown = new_match(), new_match()
    config = write_config(tmp_path, aws, {match: match_entry(sphere_image)})
    size = _max_message_size(aws)
    bad = _bad_bodies(match, size)
    for body in bad.values():
        aws.clients.sqs.send_message(QueueUrl=aws.evaluator_queue_url, MessageBody=body)
    # An unknown match (administrator's error) and a trial whose solution is missing.
    submit(aws, unknown, [[1]])
    missing = TrialRef(match, "p-9", "0001")
    send_job(aws.clients.sqs, aws.evaluator_queue_url, missing)
    worker = make_worker("evaluator", config, case_labels)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: worker.stats.dropped >= len(bad) and worker.stats.retried >= 2,
            60,
            "every bad message handled",
        )
        # Then good messages, one padded with an unknown key up to the size limit: the
        # runner (the unknown match backing off alone) still takes them.
        (plain,) = submit(aws, match, [[1, 2]])
        padded = TrialRef(match, "p-2", "0001")
        put_solution(aws.clients.dynamodb, aws.table_name, padded, [3])
        padded_body = {**json.loads(job_body(padded)), "Padding": "x" * (size - 1024)}
        aws.clients.sqs.send_message(
            QueueUrl=aws.evaluator_queue_url, MessageBody=json.dumps(padded_body)
        )
        wait_for(lambda: worker.stats.done >= 2, 60, "both good messages evaluated")
    finally:
        worker.stop(force=True)
        thread.join(30)
    assert not thread.is_alive()

    stats = worker.stats
    assert stats.dropped == len(bad), stats
    assert stats.done == 2, stats
    assert stats.errors == 0, stats
    assert stats.retried == 2, stats  # the unknown match and the missing solution
    assert result_item(aws, "Evaluations", plain)["Objective"] == Decimal(5)
    assert result_item(aws, "Evaluations", padded)["Objective"] == Decimal(9)
    # Nothing was written for a bad message, the unknown match or the missing solution.
    assert len(scan_results(aws, "Evaluation")) == 2
    assert items(aws, "Evaluations", missing) == []
    # What is left: the missing solution, released with a delay (in flight, its receive
    # count kept), and the unknown match's fresh copy (delayed, its receive count reset).
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 1, 1)
    assert containers_labelled(docker_client, case_labels) == []


def _receive_times(aws: AwsStack, count: int) -> None:
    """Receive the only message ``count`` times and let it go (a crashed runner's receives)."""
    for _ in range(count):
        got = aws.clients.sqs.receive_message(
            QueueUrl=aws.evaluator_queue_url, WaitTimeSeconds=5, VisibilityTimeout=0
        )
        assert len(got.get("Messages", [])) == 1


@pytest.mark.parametrize("earlier_receives", [0, MISSING_INPUT_RECEIVES - 1])
def test_a_missing_solution_is_made_visible_for_a_bounded_number_of_receives(
    earlier_receives: int,
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    case_labels: dict[str, str],
) -> None:
    """Received fewer than 5 times: made visible again; the 5th receive logs and deletes it.

    Receives of earlier runners are played by the test; the last is the runner's own.
    """
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(sphere_image)})
    ref = TrialRef(match, "p-1", "0001")
    send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
    _receive_times(aws, earlier_receives)
    worker = make_worker("evaluator", config, case_labels)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: worker.stats.received >= 1 and worker.stats.settled, 30, "one job")
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert worker.stats.received == 1
    assert items(aws, "Evaluations", ref) == []
    if earlier_receives + 1 >= MISSING_INPUT_RECEIVES:
        assert (worker.stats.dropped, worker.stats.retried) == (1, 0)
        assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    else:
        assert (worker.stats.dropped, worker.stats.retried) == (0, 1)
        # Released with a delay, so its receive count grows: in flight, not a delayed copy.
        assert queue_counts(aws, aws.evaluator_queue_url) == (0, 1, 0)
