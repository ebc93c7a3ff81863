"""Fixtures for the real Docker daemon: a client, images built once, labelled executors.

Docker tests skip when no daemon answers on a developer's machine but fail in
CI (env ``CI`` set), so that a broken CI setup cannot pass silently. Images are
built locally from the static busybox (no registry is needed) under tags
starting with ``opthub-test/`` and kept between sessions: rebuilding an
unchanged one is a layer-cache hit.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import docker
import pytest

from opthub_runner_admin.demo.images import (
    BEST_SO_FAR_SCRIPT,
    SPHERE_SCRIPT,
    BusyboxMissing,
    build_busybox_image,
)
from opthub_runner_admin.errors import FatalError
from opthub_runner_admin.executor.docker import DockerExecutor, connect_docker, runner_labels

#: Every image the tests build is tagged under this prefix.
TEST_IMAGE_PREFIX = "opthub-test/"
#: Label naming the test that created a container, so each test checks only its own.
CASE_LABEL = "opthub-test.case"

#: ``image_factory(tag, script) -> tag``.
ImageFactory = Callable[[str, str], str]
#: ``make_executor(**DockerExecutor keyword arguments) -> DockerExecutor`` (labels merged).
ExecutorFactory = Callable[..., DockerExecutor]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"Docker is required in CI: {reason}")
    pytest.skip(f"Docker is not available: {reason}")


def containers_labelled(
    client: docker.DockerClient, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every container (running or not) carrying all of ``labels``."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    found: list[dict[str, Any]] = client.api.containers(all=True, filters=filters)
    return found


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the local daemon (skip locally / fail in CI when there is none)."""
    try:
        client = connect_docker()
    except FatalError as exc:
        _unavailable(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def image_factory(docker_client: docker.DockerClient) -> ImageFactory:
    """Builds each (tag, script) once per session and returns the tag."""
    built: dict[str, str] = {}
    lock = threading.Lock()

    def build(tag: str, script: str) -> str:
        if not tag.startswith(TEST_IMAGE_PREFIX):
            raise ValueError(f"test image tags must start with {TEST_IMAGE_PREFIX!r}: {tag!r}")
        with lock:
            if tag in built:
                if built[tag] != script:
                    raise ValueError(f"{tag} was already built from another script")
                return tag
            try:
                build_busybox_image(docker_client, tag, script)
            except BusyboxMissing as exc:
                _unavailable(str(exc))
            built[tag] = script
            return tag

    return build


@pytest.fixture(scope="session")
def sphere_image(image_factory: ImageFactory) -> str:
    """A problem image: sum of squares of a JSON array of numbers."""
    return image_factory(f"{TEST_IMAGE_PREFIX}sphere:latest", SPHERE_SCRIPT)


@pytest.fixture(scope="session")
def best_so_far_image(image_factory: ImageFactory) -> str:
    """An indicator image: the smallest objective so far; echoes its stdin to stderr."""
    return image_factory(f"{TEST_IMAGE_PREFIX}best-so-far:latest", BEST_SO_FAR_SCRIPT)


@pytest.fixture
def case_labels(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """A label unique to the test; containers still carrying it are removed afterwards."""
    labels = {CASE_LABEL: uuid.uuid4().hex}
    yield labels
    for info in containers_labelled(docker_client, labels):
        docker_client.api.remove_container(info["Id"], force=True)


@pytest.fixture
def make_executor(
    docker_client: docker.DockerClient, case_labels: dict[str, str]
) -> ExecutorFactory:
    """Executors whose containers carry this runner's labels and the test's own label."""

    def make(**kwargs: Any) -> DockerExecutor:
        labels = {**runner_labels("test"), **case_labels, **kwargs.pop("labels", {})}
        client = kwargs.pop("client", docker_client)
        return DockerExecutor(client=client, labels=labels, **kwargs)

    return make
