"""Drain and second signal with several jobs in flight, on the real CLI (``--workers``).

The first SIGTERM hands back at once the messages received but not started
and lets every running job finish; the second cancels them all, each message
visible again at once. The runner exits 0 and leaves no container behind.
"""

from __future__ import annotations

import signal
from pathlib import Path

import docker

from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from tests.support.docker_fixtures import ImageFactory
from tests.support.e2e import items, result_item

from .helpers import new_match, submit
from .test_drain import FIRST_SIGNAL_HANDLED, SLEEP_AS_TOLD


def _sleeper(image_factory: ImageFactory) -> str:
    return image_factory("opthub-test/sleep-as-told:1", SLEEP_AS_TOLD)


def test_sigterm_drains_every_running_job_and_hands_the_waiting_one_back_at_once(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    path = write_config(
        tmp_path,
        aws,
        {match: match_entry(_sleeper(image_factory))},
        timeout=60,
        visibility_timeout=30,
        grace_period=40,
        max_jobs_per_participant=2,
        # Counts the jobs' own containers: none started ahead for the next job
        # (that one is test_prestart's and test_crash's to check).
        prestart=False,
    )
    # p-1's third trial waits for a free place under the cap; p-2 runs beside p-1.
    capped = submit(aws, match, [6, 6, 6], participant="p-1")
    (other,) = submit(aws, match, [6], participant="p-2")
    runner = runners.start("evaluator", path, args=["--workers", "4"])
    wait_for(
        lambda: len(runner_containers(docker_client, runner.pid, running=True)) == 3,
        30,
        "three jobs running",
    )
    wait_for(lambda: queue_counts(aws, aws.evaluator_queue_url)[1] == 4, 10, "four held")
    runner.signal(signal.SIGTERM)
    # Visible again now (not after its 30 s window), while the three jobs still run.
    wait_for(lambda: queue_counts(aws, aws.evaluator_queue_url)[0] == 1, 10, "the waiter back")
    assert len(runner_containers(docker_client, runner.pid, running=True)) == 3
    assert runner.wait(60) == 0, runner.log()[-3000:]
    done = [ref for ref in [*capped, other] if items(aws, "Evaluations", ref)]
    assert len(done) == 3
    assert all(result_item(aws, "Evaluations", ref)["Status"] == "Success" for ref in done)
    assert queue_counts(aws, aws.evaluator_queue_url) == (1, 0, 0)
    assert runner_containers(docker_client, runner.pid) == []
    assert "Traceback" not in runner.log()


def test_a_second_sigterm_cancels_every_job_and_hands_every_message_back(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    path = write_config(
        tmp_path,
        aws,
        {match: match_entry(_sleeper(image_factory))},
        timeout=120,
        visibility_timeout=30,
        workers=3,
    )
    refs = [submit(aws, match, [60], participant=f"p-{n}")[0] for n in range(3)]
    runner = runners.start("evaluator", path)
    wait_for(
        lambda: len(runner_containers(docker_client, runner.pid, running=True)) == 3,
        30,
        "three jobs running",
    )
    runner.signal(signal.SIGTERM)
    wait_for(lambda: FIRST_SIGNAL_HANDLED in runner.log(), 10, "the first SIGTERM handled")
    runner.signal(signal.SIGTERM)
    assert runner.wait(30) == 0, runner.log()[-3000:]
    assert queue_counts(aws, aws.evaluator_queue_url) == (3, 0, 0)
    assert all(items(aws, "Evaluations", ref) == [] for ref in refs)
    assert runner_containers(docker_client, runner.pid) == []
    assert "Traceback" not in runner.log()
