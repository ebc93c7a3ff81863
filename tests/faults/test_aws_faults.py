"""AWS faults: dropped connections, 5xx and throttling between the runner and SQS/DynamoDB.

A ``FaultProxy`` sits between the runner (``endpoint_url`` = the proxy) and the
session's moto server, which keeps its state throughout. The test reads the
table and the queue directly from moto, behind the runner's back, to see that
the message is deleted only after the result is written, and exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import docker
import pytest

from opthub_runner_admin.aws.clients import aws_clients
from opthub_runner_admin.executor.docker import DockerExecutor, runner_labels
from opthub_runner_admin.jobs.evaluate import EvaluateJob
from opthub_runner_admin.matches.file import FileMatchSource
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.emulators import FAKE_KEY, REGION
from opthub_runner_admin.platform_side.runners import (
    RunnerPool,
    RunnerProcess,
    runner_containers,
    wait_for,
)
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from opthub_runner_admin.queue.sqs import SqsQueue
from opthub_runner_admin.store.dynamodb import DynamoStore
from opthub_runner_admin.worker import Worker, WorkerSettings
from tests.support.docker_fixtures import ImageFactory, containers_labelled
from tests.support.e2e import items, result_item
from tests.support.tcp_proxy import FaultProxy

from .helpers import new_match, submit

SLEEP_AS_TOLD = 'IFS= read -r seconds\nsleep "$seconds"\necho "{\\"objective\\": $seconds}"\n'
JOB = 2  # seconds the container runs
OUTAGE = 4.0  # seconds the path to AWS stays broken
THROTTLED = '{"__type": "ThrottlingException", "message": "Rate exceeded"}'
SKEWED = '{"__type": "RequestTimeTooSkewed", "message": "Signature expired"}'
UNAVAILABLE = '{"__type": "ServiceUnavailable", "message": "Service Unavailable"}'


@pytest.fixture
def proxy(aws: AwsStack) -> Iterator[FaultProxy]:
    """A proxy in front of the session's moto server."""
    port = urlparse(aws.endpoint_url).port
    assert port is not None
    with FaultProxy.tcp(port) as running:
        yield running


def _start(
    tmp_path: Path,
    aws: AwsStack,
    proxy: FaultProxy,
    image_factory: ImageFactory,
    runners: RunnerPool,
) -> tuple[RunnerProcess, TrialRef]:
    """One job on a CLI runner that reaches AWS through ``proxy`` and stops after it."""
    image = image_factory("opthub-test/sleep-as-told:1", SLEEP_AS_TOLD)
    match = new_match()
    # No container started ahead: "the job's container is gone" is what these tests wait for.
    config = write_config(
        tmp_path, aws, {match: match_entry(image)}, endpoint_url=proxy.url, num=1, prestart=False
    )
    (ref,) = submit(aws, match, [JOB])
    return runners.start("evaluator", config), ref


def _await_written_once(aws: AwsStack, runner: RunnerProcess, ref: TrialRef) -> None:
    assert runner.wait(90) == 0, runner.log()[-3000:]
    item = result_item(aws, "Evaluations", ref)  # one result, one flag
    assert item["Status"] == "Success" and item["Objective"] == Decimal(JOB)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert "Traceback" not in runner.log()


def test_a_cut_connection_delays_the_write_and_the_delete_but_loses_nothing(
    tmp_path: Path,
    aws: AwsStack,
    proxy: FaultProxy,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    runner, ref = _start(tmp_path, aws, proxy, image_factory, runners)
    wait_for(lambda: runner_containers(docker_client, runner.pid, running=True), 30, "the job")
    proxy.cut()
    cut_at = time.monotonic()
    # The job ends during the outage: its result waits, and so does its message.
    wait_for(lambda: not runner_containers(docker_client, runner.pid), 30, "the job to end")
    assert items(aws, "Evaluations", ref) == []
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 1, 0)
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))  # the outage itself
    proxy.restore()
    _await_written_once(aws, runner, ref)


def test_5xx_and_throttling_are_retried(
    tmp_path: Path,
    aws: AwsStack,
    proxy: FaultProxy,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    runner, ref = _start(tmp_path, aws, proxy, image_factory, runners)
    wait_for(lambda: runner_containers(docker_client, runner.pid, running=True), 30, "the job")
    proxy.fail_http(503, UNAVAILABLE)
    wait_for(lambda: not runner_containers(docker_client, runner.pid), 30, "the job to end")
    wait_for(lambda: proxy.faulted >= 2, 30, "the write to meet the 503s")
    proxy.fail_http(400, THROTTLED)
    answered = proxy.faulted
    wait_for(lambda: proxy.faulted > answered, 30, "the write to be throttled")
    assert items(aws, "Evaluations", ref) == []
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 1, 0)
    proxy.restore()
    _await_written_once(aws, runner, ref)


def test_a_write_whose_answer_is_lost_is_recognised_as_done(
    tmp_path: Path,
    aws: AwsStack,
    proxy: FaultProxy,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    """The transaction took effect but its answer never came: the retry meets the flag."""
    runner, ref = _start(tmp_path, aws, proxy, image_factory, runners)
    wait_for(lambda: runner_containers(docker_client, runner.pid, running=True), 30, "the job")
    proxy.swallow_responses()
    wait_for(lambda: items(aws, "Evaluations", ref), 30, "the write to reach the table")
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 1, 0)
    proxy.restore()
    _await_written_once(aws, runner, ref)
    assert "already has a evaluation; nothing written" in runner.log()


def test_the_loop_and_the_write_retry_outlive_the_clients_own_retries(
    tmp_path: Path,
    aws: AwsStack,
    proxy: FaultProxy,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With one attempt per AWS call, every fault reaches the runner's own loops.

    The receive loop backs off and goes on (whatever the error, short of bad
    credentials or a missing queue); the result write is retried by the
    job until it succeeds, and only then is the message deleted.
    """
    caplog.set_level(logging.INFO, logger="opthub_runner_admin")
    image = image_factory("opthub-test/sleep-as-told:1", SLEEP_AS_TOLD)
    match = new_match()
    write_config(tmp_path, aws, {match: match_entry(image)})
    clients = aws_clients(
        region_name=REGION,
        endpoint_url=proxy.url,
        access_key_id=FAKE_KEY,
        secret_access_key=FAKE_KEY,
        max_attempts=1,
    )
    handler = EvaluateJob(
        store=DynamoStore(clients.dynamodb, aws.table_name),
        matches=FileMatchSource(tmp_path / "matches.yml"),
        executor=DockerExecutor(
            client=docker_client, labels={**runner_labels("faults"), **case_labels}
        ),
        timeout=30,
    )
    settings = WorkerSettings(
        poll_seconds=1, visibility_window=10, backoff_initial=0.2, backoff_max=1.0
    )
    worker = Worker(
        queue=SqsQueue(clients.sqs, aws.evaluator_queue_url), handler=handler, settings=settings
    )

    def logged(text: str) -> int:
        return sum(text in record.getMessage() for record in caplog.records)

    proxy.cut()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # Idle and cut off: receives fail, the loop backs off and keeps going.
        wait_for(lambda: logged("receiving failed") >= 3, 30, "failed receives")
        # An answer no one classified (here a skewed clock) is no reason to die either.
        proxy.fail_http(400, SKEWED)
        wait_for(lambda: logged("backing off") >= 2, 30, "refused receives")
        assert thread.is_alive()
        (ref,) = submit(aws, match, [JOB])
        proxy.restore()
        wait_for(lambda: containers_labelled(docker_client, case_labels), 30, "the job to start")
        # Cut again while the job runs: the write fails over and over, and waits.
        proxy.cut()
        wait_for(lambda: logged("writing the evaluation failed") >= 2, 30, "failed writes")
        assert items(aws, "Evaluations", ref) == []
        assert queue_counts(aws, aws.evaluator_queue_url) == (0, 1, 0)
        assert thread.is_alive()
        proxy.restore()
        wait_for(lambda: worker.stats.done == 1, 60, "the job to be done")
    finally:
        worker.stop(force=True)
        thread.join(30)
    assert not thread.is_alive()
    assert (worker.stats.done, worker.stats.errors) == (1, 0), worker.stats
    item = result_item(aws, "Evaluations", ref)
    assert item["Status"] == "Success" and item["Objective"] == Decimal(JOB)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert containers_labelled(docker_client, case_labels) == []
