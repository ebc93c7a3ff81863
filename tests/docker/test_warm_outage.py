"""Docker going away just as a job takes its container started ahead.

The job goes back (``DockerUnavailable``), and the container it took from the
warm pool is nobody's any more: it must be removed, not left running with its
output thread and socket, and the job must not stay counted among the runs
going on (the pool keeps as many containers as ran at once: a count left
behind keeps one more for good).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import docker
import pytest
import requests

from opthub_runner_admin.executor import DockerUnavailable, RunSpec
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ExecutorFactory, ImageFactory

ECHO_SCRIPT = 'IFS= read -r line\necho "$line"\n'


def _spec(image: str, line: str) -> RunSpec:
    return RunSpec(image=image, stdin_lines=[line], timeout=20.0)


def _running(client: docker.DockerClient, labels: dict[str, str]) -> list[dict[str, Any]]:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()], "status": "running"}
    found: list[dict[str, Any]] = client.api.containers(filters=filters)
    return found


def _poll(condition: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return value


def test_a_container_taken_as_docker_goes_away_is_removed_and_the_run_not_counted(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}warm-outage-echo:latest", ECHO_SCRIPT)
    client = docker.from_env()  # its own: its calls are made to fail below
    executor = make_executor(prestart=True, client=client)
    inspect = client.api.inspect_container
    failing = threading.Event()

    def inspect_or_fail(name: str) -> Any:
        # Docker stops answering between the job's first calls and its look at the
        # container it took (the daemon's socket closes before it kills containers).
        if failing.is_set():
            failing.clear()
            raise requests.exceptions.ConnectionError("Connection aborted (socket gone)")
        return inspect(name)

    monkeypatch.setattr(client.api, "inspect_container", inspect_or_fail)
    try:
        assert executor.run(_spec(image, "first"), threading.Event()).stdout == "first\n"
        ahead = _poll(lambda: _running(docker_client, case_labels), "a container started ahead")
        assert len(ahead) == 1
        taken = ahead[0]["Id"]
        failing.set()
        with pytest.raises(DockerUnavailable):
            executor.run(_spec(image, "second"), threading.Event())
        assert not failing.is_set()  # the look at the container taken failed
        _poll(lambda: executor.docker_up, "the executor to see Docker answer again")
        # The container taken goes (in the background), though the run that took it failed.
        _poll(
            lambda: taken not in {c["Id"] for c in _running(docker_client, case_labels)},
            "the container taken to be removed",
        )
        # Runs go on; none is counted as going on once they ended, the failed one neither.
        for n in range(4):
            line = f"again {n}"
            assert executor.run(_spec(image, line), threading.Event()).stdout == f"{line}\n"
        assert executor._active == 0  # no run counted as going on
        assert executor._active_of == {}
    finally:
        executor.close()
        client.close()
