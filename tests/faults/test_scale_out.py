"""Scale-out: three runner processes on one queue and one table, exactly once in effect.

Three real ``opthub-runner`` processes share a queue of 200 messages. The
flag item makes results unique; these tests check the whole outcome: 200
results, one per trial (so never a Success and a Failed for one trial), none
lost, the queue empty, every process exiting 0 on SIGTERM.

The scorer case needs more than uniqueness: every score must have seen the
complete history of its participant while other processes were scoring that
participant's neighbouring trials. Its indicator sums the objectives it is
given (the current one and the history's); trial k's objective is 2^(k-1),
so the score is 2^k - 1 exactly when the history held trials 1..k-1, each
once, and any missing or repeated trial shows in the value.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import docker
import pytest
from boto3.dynamodb.types import TypeSerializer

from opthub_runner_admin.model import Evaluation, Timing, TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import job_body
from opthub_runner_admin.platform_side.runners import (
    RunnerPool,
    RunnerProcess,
    runner_containers,
    wait_for,
)
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts, scan_results
from opthub_runner_admin.store.dynamodb import DynamoStore
from opthub_runner_admin.store.items import solution_item
from tests.support.docker_fixtures import ImageFactory

from .helpers import new_match

PROCESSES = 3
PARTICIPANTS = 10
TRIALS = 20  # per participant: 200 messages in all
#: Bound on the wait for all 200 results (they take about a minute on two cores).
DEADLINE = 240.0

#: Indicator: the sum of every objective on its two stdin lines.
SUM_SCRIPT = r"""
IFS= read -r current
IFS= read -r history
printf '%s\n%s\n' "$current" "$history" | awk '
{
    rest = $0
    while (match(rest, /"objective"[ \t]*:[ \t]*-?[0-9.]+([eE][-+]?[0-9]+)?/)) {
        value = substr(rest, RSTART, RLENGTH)
        sub(/^"objective"[ \t]*:[ \t]*/, "", value)
        sum += value
        rest = substr(rest, RSTART + RLENGTH)
    }
}
END { printf "{\"score\": %.17g}\n", sum }'
"""

pytestmark = pytest.mark.slow


def _refs(match: str) -> list[TrialRef]:
    """Trial-major order, so that each participant's trials are spread over the processes."""
    return [
        TrialRef(match, f"p-{p:02d}", f"{k:04d}")
        for k in range(1, TRIALS + 1)
        for p in range(1, PARTICIPANTS + 1)
    ]


def _enqueue(aws: AwsStack, url: str, refs: list[TrialRef]) -> None:
    for start in range(0, len(refs), 10):
        batch = refs[start : start + 10]
        aws.clients.sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": job_body(ref)} for n, ref in enumerate(batch)],
        )


def _put_solutions(aws: AwsStack, refs: list[TrialRef]) -> None:
    serializer = TypeSerializer()
    for start in range(0, len(refs), 25):
        requests: Any = [
            {
                "PutRequest": {
                    "Item": {
                        k: serializer.serialize(v)
                        for k, v in solution_item(ref, [int(ref.trial_no)], user_id="u").items()
                    }
                }
            }
            for ref in refs[start : start + 25]
        ]
        aws.clients.dynamodb.batch_write_item(RequestItems={aws.table_name: requests})


def _run_until(
    aws: AwsStack, processes: list[RunnerProcess], resource_type: str, count: int
) -> list[dict[str, Any]]:
    """Wait for ``count`` results, then SIGTERM every process and expect exit 0."""
    try:
        wait_for(
            lambda: (
                len(scan_results(aws, resource_type)) >= count
                or any(p.popen.poll() is not None for p in processes)
            ),
            DEADLINE,
            f"{count} {resource_type} results",
            interval=0.5,
        )
    finally:
        for process in processes:
            if process.popen.poll() is None:
                process.signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(60) == 0, process.log()[-3000:]
    return scan_results(aws, resource_type)


def _one_result_per_trial(results: list[dict[str, Any]], refs: list[TrialRef]) -> None:
    per_trial = Counter((r["ParticipantID"], r["TrialNo"]) for r in results)
    duplicates = {trial: n for trial, n in per_trial.items() if n > 1}
    assert not duplicates, f"trials with more than one result: {duplicates}"
    assert set(per_trial) == {(r.participant_id, r.trial_no) for r in refs}
    assert len(results) == len(refs)


def _every_process_worked(processes: list[RunnerProcess], marker: str) -> None:
    jobs = [process.log().count(marker) for process in processes]
    assert all(jobs), f"jobs per process: {jobs}"


def test_three_evaluators_evaluate_200_solutions_exactly_once(
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    config = write_config(
        tmp_path, aws, {match: match_entry(sphere_image)}, log_level="INFO", timeout=30
    )
    refs = _refs(match)
    _put_solutions(aws, refs)
    processes = [runners.start("evaluator", config) for _ in range(PROCESSES)]
    _enqueue(aws, aws.evaluator_queue_url, refs)
    started = time.monotonic()

    results = _run_until(aws, processes, "Evaluation", len(refs))

    elapsed = time.monotonic() - started
    _one_result_per_trial(results, refs)
    assert {r["Status"] for r in results} == {"Success"}
    for result in results:
        assert result["Objective"] == Decimal(int(result["TrialNo"]) ** 2)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    _every_process_worked(processes, "evaluation Success")
    for process in processes:
        assert runner_containers(docker_client, process.pid) == []
    print(f"200 evaluations by {PROCESSES} processes in {elapsed:.0f}s")


def test_three_scorers_score_200_trials_with_complete_histories(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    indicator = image_factory("opthub-test/sum-of-objectives:1", SUM_SCRIPT)
    match = new_match()
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry("opthub-test/unused:1", indicator)},
        log_level="INFO",
        timeout=30,
        defer_seconds=1,
        max_deferrals=10_000,  # never score without the complete history
    )
    refs = _refs(match)
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    now = datetime.now(timezone.utc)
    for ref in refs:
        objective = 2 ** (int(ref.trial_no) - 1)
        store.put_evaluation(ref, Evaluation(objective=objective), Timing(now, now))
    # One config, so one history cache file shared by the three processes.
    processes = [runners.start("scorer", config) for _ in range(PROCESSES)]
    _enqueue(aws, aws.scorer_queue_url, refs)
    started = time.monotonic()

    results = _run_until(aws, processes, "Score", len(refs))

    elapsed = time.monotonic() - started
    _one_result_per_trial(results, refs)
    wrong = {
        (r["ParticipantID"], r["TrialNo"]): r.get("Value", r.get("AdminErrorMessage"))
        for r in results
        if r["Status"] != "Success" or r["Value"] != Decimal(2 ** int(r["TrialNo"]) - 1)
    }
    assert not wrong, (
        f"scores computed from an incomplete history: {json.dumps(wrong, default=str)}"
    )
    assert queue_counts(aws, aws.scorer_queue_url) == (0, 0, 0)
    _every_process_worked(processes, "score Success")
    for process in processes:
        assert runner_containers(docker_client, process.pid) == []
    print(f"200 scores by {PROCESSES} processes in {elapsed:.0f}s")
