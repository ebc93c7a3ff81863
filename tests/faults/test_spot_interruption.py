"""A Spot interruption notice reaching a real runner process: it drains and hands back.

The runner watches a real IMDSv2 server (tests/support/instance_metadata.py).
The notice announces the instance's end 32 seconds ahead; with the 30-second
margin the running evaluation is cancelled about 2 seconds later, its message
is made visible again at once (not after its heartbeat window) for another
runner, and the runner exits 0 without taking the next message.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker

from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts, scan_results
from tests.support.docker_fixtures import ImageFactory
from tests.support.instance_metadata import MetadataServer, metadata_server

from ..e2e.test_evaluator_e2e import new_match, submit

__all__ = ["metadata_server"]  # the fixture, for pytest

SLEEPER = "sleep 120\n"


def test_a_spot_notice_drains_the_runner_and_hands_its_job_back(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
    metadata_server: MetadataServer,
) -> None:
    match = new_match()
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry(image_factory("opthub-test/spot-sleeper:1", SLEEPER))},
        log_level="INFO",
        timeout=300,
        visibility_timeout=120,
        spot_interruption_watch=True,
        instance_metadata_url=metadata_server.url,
    )
    submit(aws, match, [[1], [2]])
    runner = runners.start("evaluator", config)
    wait_for(lambda: runner_containers(docker_client, runner.pid), 60, "the first job's container")
    metadata_server.announce(datetime.now(timezone.utc) + timedelta(seconds=32))

    assert runner.wait(60) == 0, runner.log()[-3000:]
    log = runner.log()
    assert "Spot interruption notice: terminate" in log
    assert "handing back the unfinished jobs" in log
    assert scan_results(aws, "Evaluation") == []
    # Both messages are visible at once: the cancelled one handed back, the other never taken.
    assert queue_counts(aws, aws.evaluator_queue_url)[:2] == (2, 0)
    assert runner_containers(docker_client, runner.pid) == []
