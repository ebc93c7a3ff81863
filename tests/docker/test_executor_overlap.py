"""``prestart``: the next container started ahead, finished ones removed in the background.

What matters is that a job's result is exactly what a cold start gives (its
own stdin, environment and image), and that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker

from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.executor import RunSpec
from opthub_runner_admin.executor.docker import DockerExecutor
from opthub_runner_admin.executor.docker.executor import CONTAINER_STOP_TIMEOUT
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ExecutorFactory,
    ImageFactory,
    containers_labelled,
    hold_image,
    remove_tags,
    session_tag,
)

NORMAL_TIMEOUT = 20.0
#: Prints its stdin line, its environment's WORD, and the time it was started vs. read stdin.
ECHO_SCRIPT = 'IFS= read -r line\necho "$line $WORD"\n'


def _spec(image: str, line: str, word: str = "w") -> RunSpec:
    return RunSpec(
        image=image, stdin_lines=[line], timeout=NORMAL_TIMEOUT, environment={"WORD": word}
    )


@contextlib.contextmanager
def _one_job_run(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    **options: Any,
) -> Iterator[tuple[DockerExecutor, str, str]]:
    """A prestarting executor after its first job: it, its image, the container started ahead.

    The container for the next job is started (and waits on its stdin).
    """
    image = image_factory(f"{TEST_IMAGE_PREFIX}overlap-echo:latest", ECHO_SCRIPT)
    executor = make_executor(prestart=True, **options)
    try:
        assert executor.run(_spec(image, "first"), threading.Event()).stdout == "first w\n"
        running = _wait_for_running(docker_client, case_labels)
        assert len(running) == 1
        yield executor, image, running[0]["Id"]
    finally:
        executor.close()


def test_the_next_job_runs_in_a_container_started_ahead_with_its_own_stdin(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    # rm off: the containers are kept, their logs show which job each ran.
    with _one_job_run(docker_client, make_executor, image_factory, case_labels, rm=False) as (
        executor,
        image,
        ahead,
    ):
        assert executor.run(_spec(image, "second"), threading.Event()).stdout == "second w\n"
        assert docker_client.api.logs(ahead) == b"second w\n"
    # With rm off the two finished containers stay; the one started for a third job does not.
    assert len(containers_labelled(docker_client, case_labels)) == 2


def test_docker_s_own_stop_gives_a_container_started_ahead_one_second_not_ten(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    # A Docker restart stops every container with its own stop timeout (10 s unless the
    # container says otherwise); one started ahead waits on its input as PID 1, which
    # ignores SIGTERM, so each restart of Docker waited the whole timeout for nothing.
    with _one_job_run(docker_client, make_executor, image_factory, case_labels) as (_, _, ahead):
        config = docker_client.api.inspect_container(ahead)["Config"]
        assert config["StopTimeout"] == CONTAINER_STOP_TIMEOUT
        docker_client.api.stop(ahead)  # no timeout given: the container's own applies
        state = docker_client.api.inspect_container(ahead)["State"]
        assert (state["Running"], state["ExitCode"]) == (False, 137)  # SIGKILL after it


def test_a_container_started_ahead_that_died_meanwhile_is_not_used(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    with _one_job_run(docker_client, make_executor, image_factory, case_labels) as (
        executor,
        image,
        ahead,
    ):
        docker_client.api.kill(ahead)  # dies while it waits for its job
        second = executor.run(_spec(image, "second"), threading.Event())
        assert (second.exit_code, second.stdout) == (0, "second w\n")


def test_one_worker_keeps_two_containers_on_their_way_while_its_jobs_find_theirs(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    """Two starts overlap (Docker starts a container slower than a short job runs)."""
    image = image_factory(f"{TEST_IMAGE_PREFIX}overlap-echo:latest", ECHO_SCRIPT)
    executor = make_executor(prestart=True)
    try:
        for n in range(3):  # a cold start, then two jobs that find their container
            assert executor.run(_spec(image, f"j{n}"), threading.Event()).stdout == f"j{n} w\n"
        # (Several matches, bounds and idle keys: tests/test_warm_pool.py.)
        assert len(_wait_for_running(docker_client, case_labels, count=2)) == 2
    finally:
        executor.close()
    assert containers_labelled(docker_client, case_labels) == []


def _wait_for_running(
    client: docker.DockerClient, labels: dict[str, str], *, count: int = 1
) -> list[dict[str, Any]]:
    """The running containers, once there are ``count`` of them (or after 30 s)."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()], "status": "running"}
    deadline = time.monotonic() + 30
    while True:
        found: list[dict[str, Any]] = client.api.containers(filters=filters)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_container_started_ahead_is_not_used_for_another_environment_or_image(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
) -> None:
    # The same script as the session's overlap-echo: the build cache may give both one id.
    tag = session_tag(f"{TEST_IMAGE_PREFIX}overlap-retag-{uuid.uuid4().hex[:8]}")
    executor = make_executor(prestart=True)
    tags = [tag]
    try:
        build_busybox_image(docker_client, tag, ECHO_SCRIPT)
        tags.append(hold_image(docker_client, tag, "first"))  # the image rebuilt below
        assert executor.run(_spec(tag, "a", "one"), threading.Event()).stdout == "a one\n"
        assert executor.run(_spec(tag, "b", "two"), threading.Event()).stdout == "b two\n"
        assert _wait_for_running(docker_client, case_labels)  # started ahead, old image
        build_busybox_image(docker_client, tag, 'IFS= read -r line\necho "new $line"\n')
        assert executor.run(_spec(tag, "c", "two"), threading.Event()).stdout == "new c\n"
    finally:
        executor.close()
        remove_tags(docker_client, tags)
    assert containers_labelled(docker_client, case_labels) == []


def test_concurrent_runs_each_get_their_own_input(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}overlap-echo:latest", ECHO_SCRIPT)
    executor = make_executor(prestart=True)
    outputs: dict[str, str] = {}

    def job(line: str) -> None:
        try:
            outputs[line] = executor.run(_spec(image, line), threading.Event()).stdout
        except Exception as exc:  # shown by the assertion below, not lost with the thread
            outputs[line] = f"{type(exc).__name__}: {exc}"

    try:
        for round_ in range(3):
            threads = [threading.Thread(target=job, args=(f"r{round_}j{i}",)) for i in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
    finally:
        executor.close()
    assert outputs == {f"r{r}j{i}": f"r{r}j{i} w\n" for r in range(3) for i in range(3)}
    assert containers_labelled(docker_client, case_labels) == []


def test_interleaved_matches_each_find_the_container_started_for_them(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    """Three matches whose jobs alternate (one image, three environments) waste no start."""
    image = image_factory(f"{TEST_IMAGE_PREFIX}overlap-echo:latest", ECHO_SCRIPT)
    executor = make_executor(prestart=True)
    words = ["one", "two", "three"]
    try:
        for round_ in range(3):
            for word in words:
                run = executor.run(_spec(image, f"r{round_}", word), threading.Event())
                assert run.stdout == f"r{round_} {word}\n"
    finally:
        executor.close()
    counts = executor.warm_counts
    # The first round starts cold; every later job found its own match's container.
    assert counts.reused == 6
    assert counts.evicted == counts.expired == 0
    assert counts.closed == counts.started - counts.reused  # the rest removed at the close
    assert containers_labelled(docker_client, case_labels) == []
