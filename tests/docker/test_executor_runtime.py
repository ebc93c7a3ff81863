"""The ``runtime`` key: checked against the daemon at start-up, and Docker's refusal is ours."""

from __future__ import annotations

import threading

import docker
import pytest

from opthub_runner_admin.errors import AdminError, ConfigError
from opthub_runner_admin.executor import ContainerRejected, RunSpec
from opthub_runner_admin.executor.docker import check_runtime
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ExecutorFactory,
    ImageFactory,
    containers_labelled,
)


def test_an_unknown_runtime_is_a_start_up_error_naming_it(
    docker_client: docker.DockerClient,
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_runtime(docker_client, "no-such-runtime")
    message = str(caught.value)
    assert "'no-such-runtime'" in message
    assert "runc" in message  # what the daemon does know
    assert "\n" not in message


def test_a_registered_runtime_and_no_runtime_pass_the_check(
    docker_client: docker.DockerClient,
) -> None:
    check_runtime(docker_client, None)
    check_runtime(docker_client, "runc")


def test_the_runtime_runs_the_container(
    make_executor: ExecutorFactory, image_factory: ImageFactory
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}runtime-ok:latest", "echo ok\n")
    spec = RunSpec(image=image, stdin_lines=[], timeout=20.0)
    assert make_executor(runtime="runc").run(spec, threading.Event()).stdout == "ok\n"


def test_a_runtime_docker_cannot_use_is_the_administrators_error_naming_it(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    # Past the start-up check (the daemon's runtimes can change while we run).
    image = image_factory(f"{TEST_IMAGE_PREFIX}runtime-ok:latest", "echo ok\n")
    spec = RunSpec(image=image, stdin_lines=[], timeout=20.0)
    with pytest.raises(ContainerRejected) as caught:
        make_executor(runtime="no-such-runtime").run(spec, threading.Event())
    assert isinstance(caught.value, AdminError)  # the message goes back, no Failed trial
    assert "with runtime 'no-such-runtime'" in str(caught.value)
    assert containers_labelled(docker_client, case_labels) == []
