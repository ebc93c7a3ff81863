"""Drain: SIGTERM lets the running job finish within ``grace_period``, then gives up on it.

Each case runs the real CLI in a subprocess and signals it while its container
runs. A job that ends in time is written and its message deleted; a job that
outlasts the grace period, or meets a second SIGTERM, has its container
stopped and its message made visible again at once. Every time the runner
exits 0 and leaves no container behind.
"""

from __future__ import annotations

import signal
import time
from decimal import Decimal
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import (
    RunnerPool,
    RunnerProcess,
    runner_containers,
    wait_for,
)
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from tests.support.docker_fixtures import ImageFactory
from tests.support.e2e import items, result_item

from .helpers import new_match, submit

#: Problem image that sleeps as many seconds as the solution says, then answers it.
SLEEP_AS_TOLD = 'IFS= read -r seconds\nsleep "$seconds"\necho "{\\"objective\\": $seconds}"\n'
#: What the CLI logs once it has handled the first signal.
FIRST_SIGNAL_HANDLED = "SIGTERM: finishing the running job"


def _start_job(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
    seconds: int,
    **config: object,
) -> tuple[RunnerProcess, TrialRef]:
    image = image_factory("opthub-test/sleep-as-told:1", SLEEP_AS_TOLD)
    match = new_match()
    path = write_config(tmp_path, aws, {match: match_entry(image)}, timeout=60, **config)
    (ref,) = submit(aws, match, [seconds])
    runner = runners.start("evaluator", path)
    wait_for(lambda: runner_containers(docker_client, runner.pid, running=True), 30, "the job")
    return runner, ref


def test_sigterm_lets_the_job_finish_within_the_grace_period(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    runner, ref = _start_job(
        tmp_path, aws, image_factory, runners, docker_client, 3, grace_period=20
    )
    runner.signal(signal.SIGTERM)
    assert runner.wait(20) == 0, runner.log()[-3000:]
    item = result_item(aws, "Evaluations", ref)
    assert item["Status"] == "Success" and item["Objective"] == Decimal(3)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert runner_containers(docker_client, runner.pid) == []


@pytest.mark.parametrize("how", ["grace period over", "second SIGTERM"])
def test_a_job_that_runs_on_is_stopped_and_its_message_is_visible_at_once(
    how: str,
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    # With no grace period the first signal would wait for the whole 60 s job.
    grace = {"grace_period": 1} if how == "grace period over" else {}
    runner, ref = _start_job(
        tmp_path, aws, image_factory, runners, docker_client, 60, visibility_timeout=30, **grace
    )
    runner.signal(signal.SIGTERM)
    if how == "second SIGTERM":
        wait_for(lambda: FIRST_SIGNAL_HANDLED in runner.log(), 10, "the first SIGTERM handled")
        runner.signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert runner.wait(20) == 0, runner.log()[-3000:]
    took = time.monotonic() - signalled
    if grace:
        assert took >= 0.9  # the job was given its grace period first
    # Visible now, not after the 30 s visibility window: it was handed back.
    assert queue_counts(aws, aws.evaluator_queue_url) == (1, 0, 0)
    assert items(aws, "Evaluations", ref) == []
    assert runner_containers(docker_client, runner.pid) == []
    assert "Traceback" not in runner.log()
