"""Fixtures for the real Docker daemon: a client, images built once, labelled executors.

Docker tests skip when no daemon answers on a developer's machine but fail in
CI (env ``CI`` set), so that a broken CI setup cannot pass silently. Images are
built locally from the static busybox (no registry is needed) under tags
starting with ``opthub-test/`` and ending with this session's mark
(``sphere:latest`` is built as ``sphere:latest-pytest<pid>``): the session
removes them at its end, and one session never removes another's (several
may share a daemon). Tags left by a session that was killed are removed by
the next one, once their pid is gone.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import docker
import docker.errors
import pytest

from opthub_runner_admin.demo.images import (
    BEST_SO_FAR_SCRIPT,
    SPHERE_SCRIPT,
    BusyboxMissing,
    build_busybox_image,
)
from opthub_runner_admin.errors import FatalError
from opthub_runner_admin.executor.docker import DockerExecutor, connect_docker, runner_labels
from opthub_runner_admin.processes import pid_alive

#: Every image the tests build is tagged under this prefix.
TEST_IMAGE_PREFIX = "opthub-test/"
#: Label naming the test that created a container, so each test checks only its own.
CASE_LABEL = "opthub-test.case"
#: Docker's answer when an image is still tagged elsewhere or used by a container.
HTTP_CONFLICT = 409
#: What ends the tags this session builds: ``-pytest<pid>``.
SESSION_MARK = re.compile(r"-pytest(\d+)$")

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


def session_tag(tag: str) -> str:
    """``tag`` with this session's mark: ``a/b:1`` -> ``a/b:1-pytest<pid>``."""
    if ":" not in tag.rsplit("/", maxsplit=1)[-1]:
        tag += ":latest"
    return f"{tag}-pytest{os.getpid()}"


def remove_tags(client: docker.DockerClient, tags: list[str]) -> None:
    """Untag (and delete, when no other tag holds it) each image; a missing one is fine.

    An image id (``sha256:...``) is removed only when no tag holds it any more:
    the same script builds the same image, which another session may have tagged.
    """
    for tag in tags:
        try:
            client.api.remove_image(tag, force=not tag.startswith("sha256:"))
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code != HTTP_CONFLICT:
                raise


def orphaned_session_tags(client: docker.DockerClient) -> list[str]:
    """Test images of sessions whose process is gone (killed before their teardown)."""
    found = []
    for image in client.api.images(name=f"{TEST_IMAGE_PREFIX}*"):
        for tag in image.get("RepoTags") or []:
            mark = SESSION_MARK.search(tag)
            if mark and not pid_alive(int(mark.group(1))):
                found.append(tag)
    return found


@pytest.fixture(scope="session")
def image_factory(docker_client: docker.DockerClient) -> Iterator[ImageFactory]:
    """Builds each (tag, script) once per session and returns the tag it built.

    The returned tag carries the session's mark; every one is removed at the
    session's end, so that a test run leaves no image behind.
    """
    built: dict[str, tuple[str, str]] = {}
    lock = threading.Lock()
    remove_tags(docker_client, orphaned_session_tags(docker_client))

    def build(tag: str, script: str) -> str:
        if not tag.startswith(TEST_IMAGE_PREFIX):
            raise ValueError(f"test image tags must start with {TEST_IMAGE_PREFIX!r}: {tag!r}")
        with lock:
            if tag in built:
                if built[tag][0] != script:
                    raise ValueError(f"{tag} was already built from another script")
                return built[tag][1]
            unique = session_tag(tag)
            try:
                build_busybox_image(docker_client, unique, script)
            except BusyboxMissing as exc:
                _unavailable(str(exc))
            built[tag] = (script, unique)
            return unique

    yield build
    remove_tags(docker_client, [unique for _, unique in built.values()])


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
