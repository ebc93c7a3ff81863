"""The suite's own images: marked per session, removed at its end, a killed session's later.

A test run must leave ``docker images`` as it found it; several sessions may
share one daemon, so a session only ever removes the tags it built, or those
of a session whose process is gone.
"""

from __future__ import annotations

import os
import subprocess

import docker

from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ImageFactory,
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
