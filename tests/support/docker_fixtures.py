"""Fixtures for the real Docker daemon: a client, images built once, labelled executors.

Docker tests skip when no daemon answers on a developer's machine but fail in
CI (env ``CI`` set), so that a broken CI setup cannot pass silently. Images are
built locally from the static busybox (no registry is needed) under tags
starting with ``opthub-test/`` and ending with this session's mark
(``sphere:latest`` is built as ``sphere:latest-pytest<pid>``): the session
removes them at its end, and one session never removes another's (several
may share a daemon). Tags left by a session that was killed are removed by
the next one, once their pid is gone.

Images are only ever removed by tag, never by id. Docker deletes an image by
id whenever all its tags are in one repository, the tag of another test run
included, and the same script builds the same image id from the build cache.
A test that builds a tag again first gives the image it replaces a tag of its
own (``hold_image``), so that image too is removed by tag: Docker deletes it
only when no other tag holds it.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from opthub_runner_admin.host.processes import pid_alive

#: Every image the tests build is tagged under this prefix.
TEST_IMAGE_PREFIX = "opthub-test/"
#: Label naming the test that created a container, so each test checks only its own.
CASE_LABEL = "opthub-test.case"
#: Docker's answer when an image is still tagged elsewhere or used by a container.
HTTP_CONFLICT = 409
#: What ends the tags this session builds: ``-pytest<pid>``.
SESSION_MARK = re.compile(r"-pytest(\d+)$")
#: An image id as Docker takes it (``sha256:<hex>``, or a hex prefix of it).
IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]+")

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
    """Untag each image; a missing tag is fine.

    Docker deletes the image itself only once no other tag holds it, so a tag
    of another test or test run keeps the image usable. A name that is an image
    id is refused: see the module's docstring.
    """
    for tag in tags:
        if IMAGE_ID.fullmatch(tag):
            raise ValueError(f"remove images by tag, never by id: {tag!r}")
        try:
            client.api.remove_image(tag, force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code != HTTP_CONFLICT:
                raise


def hold_image(client: docker.DockerClient, tag: str, version: str) -> str:
    """Tag the image ``tag`` names now as ``version`` too, and return that tag.

    For a test that builds ``tag`` again: the image it replaces keeps a tag of
    the test's own, so ``remove_tags`` can remove it where it would otherwise
    stay dangling (or tempt a removal by id).
    """
    repository = tag.rsplit(":", maxsplit=1)[0] if ":" in tag.rsplit("/", maxsplit=1)[-1] else tag
    held = session_tag(f"{repository}:{version}")
    client.api.tag(tag, repository, held[len(repository) + 1 :])
    return held


@contextlib.contextmanager
def images_left_as_found(client: docker.DockerClient, tags: Sequence[str]) -> Iterator[None]:
    """For a command under test that builds ``tags`` itself (the demo, the soak).

    Those the daemon did not hold before are removed afterwards; those it did
    (an operator's own demo run, say) are kept.
    """
    there = {tag for tag in tags if client.api.images(name=tag)}
    try:
        yield
    finally:
        remove_tags(client, [tag for tag in tags if tag not in there])


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
