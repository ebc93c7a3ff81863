"""``prestart: true`` through the real CLI: jobs run, and nothing is left at the stop.

The container started ahead for the next job runs idle between jobs; the
runner removes it (and any container still queued for removal) when it
stops, so a clean stop leaves no container of the runner behind.
"""

from __future__ import annotations

import signal
from decimal import Decimal
from pathlib import Path

import docker

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from tests.support.e2e import items, result_item

from .helpers import new_match, submit


def test_a_prestarting_runner_evaluates_and_leaves_no_container_at_the_stop(
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    path = write_config(tmp_path, aws, {match: match_entry(sphere_image)}, prestart=True)
    refs = submit(aws, match, [[1], [2], [3]])
    runner = runners.start("evaluator", path)
    try:
        wait_for(
            lambda: all(_evaluated(aws, ref) for ref in refs), 60, "three evaluations", interval=0.2
        )
    except AssertionError:
        raise AssertionError(runner.log()[-4000:]) from None
    for n, ref in enumerate(refs, start=1):
        assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(n * n)
    # The next job's container is up already, waiting for its input.
    wait_for(
        lambda: runner_containers(docker_client, runner.pid, running=True), 30, "a warm container"
    )
    runner.signal(signal.SIGTERM)
    assert runner.wait(60) == 0, runner.log()[-3000:]
    assert runner_containers(docker_client, runner.pid) == []
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)


def _evaluated(aws: AwsStack, ref: TrialRef) -> bool:
    return any("Status" in item for item in items(aws, "Evaluations", ref))
