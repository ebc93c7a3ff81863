"""Image pull policy against the real daemon and a registry on loopback.

The registry (``tests/support/registry.py``) is ours, but the pulls are the
real daemon's: what these tests count and see is what Docker asked for.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.executor import ImageNotAvailable, RunSpec
from opthub_runner_admin.executor.docker import DockerExecutor, ImagePolicy, runner_labels
from tests.support.counting_api import ClientOf, CountingApi
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ImageFactory,
    hold_image,
    remove_tags,
    session_tag,
)
from tests.support.registry import LoopbackRegistry, serve

NORMAL_TIMEOUT = 20.0
#: An interval no test outlives: "pulled once in this interval".
LONG_INTERVAL = 3600.0


@pytest.fixture
def registry(docker_client: docker.DockerClient) -> Iterator[LoopbackRegistry]:
    """A loopback registry; the images the daemon pulled from it are removed afterwards.

    Also those no tag names any more (an earlier pull of a tag pushed again): they
    still carry the registry's digest. (A name filter ``host/*`` would miss them,
    and every ``host/opthub-test/...`` name: ``*`` stops at a slash.)
    """
    for running in serve(LoopbackRegistry()):
        yield running
        ours = f"{running.host}/"
        for image in docker_client.api.images(all=True):
            tags = [tag for tag in image.get("RepoTags") or [] if tag.startswith(ours)]
            digests = [d for d in image.get("RepoDigests") or [] if d.startswith(ours)]
            # The pulled image is often the local one (same id): remove the registry's
            # names (tags, and the digest an earlier pull of a re-pushed tag keeps), never
            # the image by id.
            remove_tags(docker_client, [*tags, *digests])


def _executor(
    api: Any,
    labels: dict[str, str],
    *,
    on_image_pulled: Callable[[str], None] | None = None,
    **policy: Any,
) -> DockerExecutor:
    return DockerExecutor(
        client=ClientOf(api),
        labels={**runner_labels("test"), **labels},
        images=ImagePolicy(**policy),
        on_image_pulled=on_image_pulled,
    )


def _run(executor: DockerExecutor, image: str) -> str:
    spec = RunSpec(image=image, stdin_lines=[], timeout=NORMAL_TIMEOUT)
    return executor.run(spec, threading.Event()).stdout


def _echo_image(image_factory: ImageFactory, word: str) -> str:
    return image_factory(f"{TEST_IMAGE_PREFIX}pull-{word}:latest", f"echo {word}\n")


def test_always_picks_up_an_image_pushed_again_under_the_same_tag(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    registry: LoopbackRegistry,
    case_labels: dict[str, str],
) -> None:
    name = f"opthub-test/retag-{uuid.uuid4().hex[:8]}"
    image = registry.publish(docker_client, _echo_image(image_factory, "one"), name, "1")
    always = _executor(docker_client.api, case_labels, pull_policy="always", pull_interval=0)
    if_missing = _executor(docker_client.api, case_labels)
    assert _run(always, image) == "one\n"
    assert _run(if_missing, image) == "one\n"

    registry.publish(docker_client, _echo_image(image_factory, "two"), name, "1")
    assert _run(if_missing, image) == "one\n"  # present: never asks the registry again
    assert _run(always, image) == "two\n"


def test_always_pulls_a_tag_once_per_interval(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    registry: LoopbackRegistry,
    case_labels: dict[str, str],
) -> None:
    name = f"opthub-test/interval-{uuid.uuid4().hex[:8]}"
    image = registry.publish(docker_client, _echo_image(image_factory, "one"), name, "1")
    api = CountingApi(docker_client.api)
    reported: list[str] = []
    executor = _executor(
        api,
        case_labels,
        on_image_pulled=reported.append,
        pull_policy="always",
        pull_interval=LONG_INTERVAL,
    )
    for _ in range(3):
        assert _run(executor, image) == "one\n"
    assert api.pulls == 1
    assert registry.manifest_requests == 1
    assert reported == [image]  # what the runner's metrics count


def test_concurrent_jobs_share_one_pull(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    registry: LoopbackRegistry,
    case_labels: dict[str, str],
) -> None:
    name = f"opthub-test/flight-{uuid.uuid4().hex[:8]}"
    image = registry.publish(docker_client, _echo_image(image_factory, "one"), name, "1")
    registry.manifest_delay = 1.0  # the pull is still under way when the other jobs arrive
    api = CountingApi(docker_client.api)
    executor = _executor(api, case_labels, pull_policy="always", pull_interval=LONG_INTERVAL)
    jobs = 4
    barrier = threading.Barrier(jobs)
    outputs: list[str] = []

    def job() -> None:
        barrier.wait()
        outputs.append(_run(executor, image))

    threads = [threading.Thread(target=job) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outputs == ["one\n"] * jobs
    assert api.pulls == 1
    assert registry.manifest_requests == 1


def test_a_failed_pull_is_retried_then_named_or_falls_back_to_the_local_copy(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    registry: LoopbackRegistry,
    case_labels: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"opthub-test/trouble-{uuid.uuid4().hex[:8]}"
    image = registry.publish(docker_client, _echo_image(image_factory, "one"), name, "1")
    api = CountingApi(docker_client.api)
    executor = _executor(
        api, case_labels, pull_policy="always", pull_interval=0, pull_attempts=3, pull_backoff=0.05
    )
    registry.manifest_status = 503  # a registry in trouble: trying again may pass
    with pytest.raises(ImageNotAvailable) as caught:
        _run(executor, f"{registry.host}/{name}:2")
    assert f"{registry.host}/{name}:2" in str(caught.value)
    assert api.pulls == 3

    registry.manifest_status = None
    assert _run(executor, image) == "one\n"  # pulled: now present locally
    registry.manifest_status = 503
    api.pulls = 0
    with caplog.at_level(logging.WARNING):
        assert _run(executor, image) == "one\n"
    assert api.pulls == 3
    assert any(image in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("why", ["tag not pushed", "no registry answers"])
def test_a_pull_that_cannot_succeed_is_tried_once_and_shared_by_the_jobs_waiting(
    docker_client: docker.DockerClient,
    registry: LoopbackRegistry,
    case_labels: dict[str, str],
    why: str,
) -> None:
    """Retrying a missing tag or an absent registry inside the job only holds others up."""
    name = f"opthub-test/gone-{uuid.uuid4().hex[:8]}"
    host = registry.host if why == "tag not pushed" else "127.0.0.1:1"  # nothing listens
    absent = f"{host}/{name}:never-pushed"
    api = CountingApi(docker_client.api)
    executor = _executor(api, case_labels, pull_attempts=3, pull_backoff=30)
    failures: list[BaseException] = []

    def job() -> None:
        with pytest.raises(ImageNotAvailable) as caught:
            _run(executor, absent)
        failures.append(caught.value)

    # The registry holds the manifest request: the other jobs arrive while the pull is out.
    registry.manifest_delay = 1.0
    concurrent = 3 if why == "tag not pushed" else 1  # an absent registry answers at once
    jobs = [threading.Thread(target=job) for _ in range(concurrent)]
    for thread in jobs:
        thread.start()
    for thread in jobs:
        thread.join(60)
    assert len(failures) == concurrent and all(absent in str(f) for f in failures)
    assert api.pulls == 1  # no retry (30 s apart), and the jobs that waited shared it
    with pytest.raises(ImageNotAvailable):
        _run(executor, absent)  # a later job tries again: failures are not remembered
    assert api.pulls == 2


def test_never_runs_present_images_and_refuses_absent_ones(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    registry: LoopbackRegistry,
    case_labels: dict[str, str],
) -> None:
    local = _echo_image(image_factory, "one")
    name = f"opthub-test/never-{uuid.uuid4().hex[:8]}"
    remote = registry.publish(docker_client, local, name, "1")
    api = CountingApi(docker_client.api)
    executor = _executor(api, case_labels, pull_policy="never")
    assert _run(executor, local) == "one\n"
    with pytest.raises(ImageNotAvailable) as caught:
        _run(executor, remote)
    assert remote in str(caught.value)
    assert "pull_policy is never" in str(caught.value)
    assert api.pulls == 0
    assert registry.manifest_requests == 0


def test_a_docker_login_done_while_running_is_used_at_the_next_pull(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    registry: LoopbackRegistry,
    case_labels: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.json"
    # Some login already exists when the runner starts: docker-py caches a non-empty config.
    _write_login(config, "registry.example.org", "someone:else")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    client = docker.from_env()
    name = f"opthub-test/private-{uuid.uuid4().hex[:8]}"
    image = registry.publish(docker_client, _echo_image(image_factory, "one"), name, "1")
    registry.credentials = "admin:s3cret-Passw0rd"
    executor = _executor(client.api, case_labels, pull_attempts=1)
    with pytest.raises(ImageNotAvailable) as caught:
        _run(executor, image)
    assert image in str(caught.value)

    _write_login(config, registry.host, registry.credentials)  # the operator's `docker login`
    assert _run(executor, image) == "one\n"
    expected = "Basic " + base64.b64encode(registry.credentials.encode()).decode()
    assert expected in registry.authorizations
    client.close()


def _write_login(path: Path, host: str, credentials: str) -> None:
    auth = base64.b64encode(credentials.encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def test_an_image_tagged_again_locally_is_used_by_the_next_run(
    docker_client: docker.DockerClient, case_labels: dict[str, str]
) -> None:
    tag = session_tag(f"{TEST_IMAGE_PREFIX}retagged-{uuid.uuid4().hex[:8]}")
    executor = _executor(docker_client.api, case_labels)
    tags = [tag]
    try:
        build_busybox_image(docker_client, tag, "echo first\n")
        tags.append(hold_image(docker_client, tag, "first"))  # the image rebuilt below
        assert _run(executor, tag) == "first\n"
        build_busybox_image(docker_client, tag, "echo second\n")
        assert _run(executor, tag) == "second\n"  # the tag is resolved at each create
    finally:
        remove_tags(docker_client, tags)
