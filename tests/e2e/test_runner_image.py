"""The runner's image (the repository's Dockerfile) built and run against the test stack.

The container is run as an operator runs it (Dockerfile's header): as the
image's unprivileged user with the Docker socket's group added, the config
from a read-only mounted folder, the administrator's login from the
environment. It shares the host's network only to reach the moto server and
the GraphQL server on 127.0.0.1; its PID namespace is its own, so the runner
is PID 1 there, as in a Kubernetes pod, and a SIGTERM must still drain it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from decimal import Decimal
from pathlib import Path

import docker
import docker.errors
import pytest
import yaml

from opthub_runner_admin.executor.docker.reaping import LABEL_QUEUE, LABEL_RUNNER, runner_labels
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer
from opthub_runner_admin.platform_side.runners import wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts

from ..support.api_fixtures import CognitoPool
from ..support.docker_fixtures import CASE_LABEL, ImageFactory
from ..support.e2e import result_item
from ..support.runner_image import RunnerImage, runner_image
from .test_api_e2e import submit

__all__ = ["runner_image"]  # the fixture, for pytest

#: The first test builds the image (a Debian base by mmdebstrap, then the Dockerfile): about
#: a minute and a half on a quiet machine, several on a busy one.
pytestmark = pytest.mark.timeout(1200)

SOCKET = "/var/run/docker.sock"
#: Long enough for the SIGTERM to land while the evaluation runs.
SLOW_SPHERE = "IFS= read -r line\nsleep 3\necho '{\"objective\": 42}'\n"
#: Where the container reads its config (a read-only mount) and keeps its state.
CONFIG_DIR = "/etc/opthub-runner"
STATE_DIR = "/var/lib/opthub-runner"


def _socket_gid() -> int:
    host = os.environ.get("DOCKER_HOST", f"unix://{SOCKET}")
    if host != f"unix://{SOCKET}" or not stat.S_ISSOCK(os.stat(SOCKET).st_mode):
        pytest.skip(f"the container needs the daemon's socket at {SOCKET}")
    return os.stat(SOCKET).st_gid


def test_the_image_runs_as_its_own_user_and_shows_help(
    docker_client: docker.DockerClient, runner_image: RunnerImage
) -> None:
    print(f"runner image built in {runner_image.timings} s")
    config = docker_client.images.get(runner_image.tag).attrs["Config"]
    assert config["User"] == "opthub"
    output = docker_client.containers.run(runner_image.tag, ["--help"], remove=True)
    assert b"evaluator" in output and b"scorer" in output
    uid = docker_client.containers.run(
        runner_image.tag, ["-c", "import os; print(os.getuid())"], entrypoint="python3", remove=True
    )
    assert int(uid) != 0


def test_the_container_evaluates_and_drains_on_sigterm(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    image_factory: ImageFactory,
    docker_client: docker.DockerClient,
    runner_image: RunnerImage,
) -> None:
    gid = _socket_gid()
    match = str(uuid.uuid4())
    opthub_api.add_match(
        match, FakeMatch(problem_image=image_factory("opthub-test/slow-sphere:1", SLOW_SPHERE))
    )
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o755)
    settings = aws.config(
        api_url=opthub_api.url,
        cognito_region=cognito_pool.region,
        cognito_user_pool_id=cognito_pool.user_pool_id,
        cognito_client_id=cognito_pool.client_id,
        interval=1,
        timeout=30,
        visibility_timeout=10,
        cache_dir=f"{STATE_DIR}/cache",
    )
    (etc / "config.yml").write_text(yaml.safe_dump(settings))
    # Readable by the image's user. The config holds the emulator's fake keys only; an
    # operator's holds real ones and belongs to that user, mode 0600.
    (etc / "config.yml").chmod(0o644)
    [ref] = submit(aws, match, 1)
    # A container of a live runner of this host (this test session), as its executors
    # label theirs: no queue label, so in every runner's scope. The containerized runner
    # shares the host's name but not its pids: its start, which reaps the containers of
    # dead runners, cannot judge this one's pid and must leave it (a CI run's container
    # was once taken from under a Docker test running beside this one).
    live_runners = docker_client.api.create_container(
        image_factory("opthub-test/slow-sphere:1", SLOW_SPHERE),
        labels={**runner_labels("beside"), CASE_LABEL: uuid.uuid4().hex},
    )
    container = docker_client.containers.run(
        runner_image.tag,
        ["evaluator", "--config", f"{CONFIG_DIR}/config.yml"],
        detach=True,
        network_mode="host",
        group_add=[str(gid)],
        volumes={
            SOCKET: {"bind": SOCKET, "mode": "rw"},
            str(etc): {"bind": CONFIG_DIR, "mode": "ro"},
        },
        environment={
            "OPTHUB_USERNAME": cognito_pool.username,
            "OPTHUB_PASSWORD": cognito_pool.password,
        },
        labels={CASE_LABEL: uuid.uuid4().hex},
    )
    try:
        # The evaluation's container is up: the job is running when the SIGTERM comes.
        wait_for(
            lambda: (
                docker_client.api.containers(
                    filters={
                        "label": [f"{LABEL_RUNNER}=1", f"{LABEL_QUEUE}={aws.evaluator_queue_url}"]
                    }
                )
                or container.reload()
                or container.status == "exited"
            ),
            60,
            "the evaluation's container",
        )
        container.reload()
        assert container.status == "running", container.logs().decode()[-3000:]
        container.kill(signal="SIGTERM")
        status = container.wait(timeout=60)
        logs = container.logs().decode()
        assert status["StatusCode"] == 0, logs[-3000:]
        left = docker_client.api.containers(all=True, filters={"id": live_runners["Id"]})
        assert [info["Id"] for info in left] == [live_runners["Id"]], logs[-3000:]
    finally:
        container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(live_runners["Id"], force=True)
    assert "finishing the running jobs" in logs
    item = result_item(aws, "Evaluations", ref)
    assert item["Status"] == "Success" and item["Objective"] == Decimal(42)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert cognito_pool.password not in logs
