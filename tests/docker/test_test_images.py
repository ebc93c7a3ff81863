"""The suite's own images: marked per session, removed at its end, a killed session's later.

A test run must leave ``docker images`` as it found it; several sessions may
share one daemon, so a session only ever removes the tags it built, or those
of a session whose process is gone, and never an image by id: the build cache
gives one script one image id, whichever test or test run built it.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import docker
import docker.errors
import pytest

from opthub_runner_admin.demo.images import build_busybox_image
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ImageFactory,
    hold_image,
    orphaned_session_tags,
    remove_tags,
    session_tag,
)


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_built_images_carry_the_sessions_mark(sphere_image: str) -> None:
    assert sphere_image == f"{TEST_IMAGE_PREFIX}sphere:latest-pytest{os.getpid()}"
    assert session_tag("opthub-test/x") == f"opthub-test/x:latest-pytest{os.getpid()}"


def test_a_killed_sessions_images_are_found_and_removed(
    docker_client: docker.DockerClient, image_factory: ImageFactory
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}marks:1", "true\n")
    dead, repository = _dead_pid(), f"{TEST_IMAGE_PREFIX}marks"
    left = f"{repository}:1-pytest{dead}"
    docker_client.api.tag(image, repository, f"1-pytest{dead}")
    try:
        found = orphaned_session_tags(docker_client)
        assert left in found
        assert image not in found  # this live session's own
        remove_tags(docker_client, [left])
        assert left not in {t for i in docker_client.api.images() for t in i["RepoTags"] or []}
        assert docker_client.api.images(name=image)  # the live session's tag is kept
    finally:
        remove_tags(docker_client, [left])


def _exit_code(client: docker.DockerClient, image: str) -> int:
    """Runs ``image`` (its script) and returns its exit code: the image is usable."""
    container = client.api.create_container(image)
    try:
        client.api.start(container)
        code: int = client.api.wait(container, timeout=60)["StatusCode"]
        return code
    finally:
        client.api.remove_container(container, force=True)


def _tag_as(client: docker.DockerClient, image: str, tag: str) -> str:
    """Gives ``image`` the second name ``tag`` (``repository:version``), and returns it."""
    repository, version = tag.rsplit(":", maxsplit=1)
    client.api.tag(image, repository, version)
    return tag


def _exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.api.inspect_image(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_removing_one_tag_of_an_image_leaves_its_other_tag_usable(
    docker_client: docker.DockerClient, image_factory: ImageFactory
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}two-tags:1", "true\n")
    other = _tag_as(docker_client, image, session_tag(f"{TEST_IMAGE_PREFIX}two-tags-other:1"))
    image_id = docker_client.api.inspect_image(image)["Id"]
    try:
        assert docker_client.api.inspect_image(other)["Id"] == image_id
        remove_tags(docker_client, [other])
        assert not _exists(docker_client, other)
        assert docker_client.api.inspect_image(image)["Id"] == image_id
        assert _exit_code(docker_client, image) == 0
    finally:
        remove_tags(docker_client, [other])


def test_an_image_id_is_never_removed(
    docker_client: docker.DockerClient, image_factory: ImageFactory
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}two-tags:1", "true\n")
    image_id = docker_client.api.inspect_image(image)["Id"]
    for name in (image_id, image_id.removeprefix("sha256:")[:12]):
        with pytest.raises(ValueError, match="never by id"):
            remove_tags(docker_client, [name])
    assert _exit_code(docker_client, image) == 0


def test_an_image_built_again_under_its_tag_is_removed_by_tag_and_spares_another_runs_tag(
    docker_client: docker.DockerClient, image_factory: ImageFactory
) -> None:
    """The first build shares its id with another run's image, as the build cache makes it."""
    shared = image_factory(f"{TEST_IMAGE_PREFIX}two-tags:1", "true\n")
    tag = _tag_as(
        docker_client, shared, session_tag(f"{TEST_IMAGE_PREFIX}rebuilt-{uuid.uuid4().hex[:8]}")
    )
    tags = [tag, hold_image(docker_client, tag, "first")]
    first_id = docker_client.api.inspect_image(tag)["Id"]
    try:
        assert docker_client.api.inspect_image(tags[1])["Id"] == first_id
        build_busybox_image(docker_client, tag, f"echo {uuid.uuid4().hex}\n")
        second_id = docker_client.api.inspect_image(tag)["Id"]
        assert second_id != first_id
    finally:
        remove_tags(docker_client, tags)
    assert not any(_exists(docker_client, name) for name in tags)
    assert not _exists(docker_client, second_id)  # no other tag held it: deleted, not dangling
    assert docker_client.api.inspect_image(shared)["Id"] == first_id
    assert _exit_code(docker_client, shared) == 0


def test_an_image_built_again_under_its_tag_leaves_nothing_behind(
    docker_client: docker.DockerClient,
) -> None:
    tag = session_tag(f"{TEST_IMAGE_PREFIX}rebuilt-{uuid.uuid4().hex[:8]}")
    build_busybox_image(docker_client, tag, f"echo {uuid.uuid4().hex}\n")
    tags = [tag, hold_image(docker_client, tag, "first")]
    ids = [docker_client.api.inspect_image(tag)["Id"]]
    try:
        build_busybox_image(docker_client, tag, f"echo {uuid.uuid4().hex}\n")
        ids.append(docker_client.api.inspect_image(tag)["Id"])
    finally:
        remove_tags(docker_client, tags)
    assert [image_id for image_id in ids if _exists(docker_client, image_id)] == []
