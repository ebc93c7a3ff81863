"""Docker gone: at start, the published one-line error; in the middle of a run, no harm done.

The runner reaches the daemon through a ``FaultProxy`` on a unix socket of its
own (``DOCKER_HOST=unix://...``); cutting the proxy is, for the runner, the
daemon going away: every connection drops and the socket disappears. The
container itself keeps running in the real daemon, as it may after a daemon
crash with live-restore, and must not be left behind once Docker is back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from tests.support.docker_fixtures import ImageFactory
from tests.support.e2e import items, result_item
from tests.support.tcp_proxy import FaultProxy

from .helpers import new_match, submit

SLEEP_AS_TOLD = 'IFS= read -r seconds\nsleep "$seconds"\necho "{\\"objective\\": $seconds}"\n'
#: The socket of the daemon the suite uses (DOCKER_HOST, as the runner reads it), so that
#: the proxy reaches the daemon the suite's images were built on.
DOCKER_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
JOB = 3  # seconds
OUTAGE = 3.0  # seconds
#: The line the published README shows when Docker is not running.
PUBLISHED_ERROR = (
    "Error: Unable to communicate with Docker. Please ensure Docker is running and accessible."
    " (Error while fetching server API version: ('Connection aborted.',"
    " FileNotFoundError(2, 'No such file or directory')))"
)


@pytest.fixture
def docker_proxy() -> Iterator[FaultProxy]:
    """A proxy of the daemon's socket, in a short path (unix socket paths are limited)."""
    if "://" in DOCKER_SOCKET or not Path(DOCKER_SOCKET).exists():
        pytest.skip(f"no local Docker socket at {DOCKER_SOCKET}")
    folder = tempfile.mkdtemp(prefix="opthub-docker-")
    try:
        with FaultProxy.unix(DOCKER_SOCKET, f"{folder}/docker.sock") as proxy:
            yield proxy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_docker_down_at_start_is_the_published_one_line_error(
    tmp_path: Path, aws: AwsStack, sphere_image: str, runners: RunnerPool
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(sphere_image)}, log_level="INFO")
    submit(aws, match, [[1]])
    missing = tmp_path / "no-docker" / "docker.sock"
    runner = runners.start("evaluator", config, env={"DOCKER_HOST": f"unix://{missing}"})
    assert runner.wait(60) == 1
    output = runner.log()
    assert output.strip().splitlines()[-1] == PUBLISHED_ERROR, output
    assert "Traceback" not in output
    # Nothing was taken from the queue.
    assert queue_counts(aws, aws.evaluator_queue_url) == (1, 0, 0)


def test_docker_gone_mid_job_fails_nobody_and_the_runner_resumes(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_proxy: FaultProxy,
    docker_client: docker.DockerClient,
) -> None:
    image = image_factory("opthub-test/sleep-as-told:1", SLEEP_AS_TOLD)
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(image)}, num=1, log_level="INFO")
    (ref,) = submit(aws, match, [JOB])
    runner = runners.start("evaluator", config, env={"DOCKER_HOST": docker_proxy.url})
    wait_for(lambda: runner_containers(docker_client, runner.pid, running=True), 30, "the job")

    docker_proxy.cut()
    cut_at = time.monotonic()
    # The job is abandoned, not failed: its message goes back, nothing is written.
    wait_for(
        lambda: sum(queue_counts(aws, aws.evaluator_queue_url)[::2]) == 1,
        30,
        "the message to be made visible again",
    )
    assert items(aws, "Evaluations", ref) == []
    wait_for(lambda: "pausing" in runner.log(), 10, "the runner to back off")
    assert runner.popen.poll() is None  # still running, waiting for Docker
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))  # the outage itself
    docker_proxy.restore()

    assert runner.wait(90) == 0, runner.log()[-3000:]
    item = result_item(aws, "Evaluations", ref)  # exactly one result: Success
    assert item["Status"] == "Success" and item["Objective"] == Decimal(JOB)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert "Docker daemon unreachable" in runner.log()
    assert "Traceback" not in runner.log()
    # The container abandoned during the outage did not outlive the runner's recovery.
    assert runner_containers(docker_client, runner.pid) == []
