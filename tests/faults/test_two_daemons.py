"""Scale-out across hosts: two Docker daemons on this machine stand for two hosts.

The second daemon (``scripts/second-dockerd.sh``) has its own socket, data
root, exec root, pid file, cgroup parent and bridge. One runner with
``workers: 4`` uses each daemon; they share the queue and the table, and
each daemon's own events show its runner running several containers at
once. The second one is killed with SIGKILL while several of its jobs run:
their messages come back and the other host evaluates them, every trial
ends with exactly one result, and every container the dead runner still
ran on its own daemon is left alone by the runners on the other daemon
(only a runner started again on that daemon reaps them).
Afterwards the first daemon must still run containers: a second daemon
started carelessly once deleted the first one's bridge.

The same daemon, which has crun registered, shows what a runtime that cannot
create containers does (on a hybrid cgroup host, crun refuses): the job is
the administrator's error naming the runtime, not a participant's failure.

Needs root (a daemon, a bridge); skipped otherwise, and when ``dockerd`` is
not installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.executor import ContainerRejected, RunSpec
from opthub_runner_admin.executor.docker import (
    LABEL_HOST,
    LABEL_PID,
    LABEL_RUNNER,
    DockerExecutor,
    runner_labels,
)
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.second_daemon import second_dockerd
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts, scan_results
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    containers_labelled,
    remove_tags,
    session_tag,
)

from .helpers import new_match, submit

SECOND_DAEMON_ENV = {
    "OPTHUB_BENCH_STATE": "/run/opthub-test-d2",
    "OPTHUB_BENCH_DATA": "/var/lib/opthub-test-d2",
    "OPTHUB_BENCH_BRIDGE": "otb0",
    "OPTHUB_BENCH_SUBNET": "172.31.251.1/24",
    # The host's cgroup mounts as they are: on a hybrid host crun then refuses to work.
    "OPTHUB_BENCH_HIDE_UNIFIED": "0",
}
UNIFIED = Path("/sys/fs/cgroup/unified/cgroup.controllers")
#: Takes a second: long enough to be killed in the middle of.
NAP_SCRIPT = "IFS= read -r line\nsleep 1\necho '{\"objective\": 1}'\n"
#: Jobs at once in each runner (config ``workers``).
WORKERS = 4
#: Enough for each host to run several rounds of WORKERS containers.
TRIALS = 24
#: Containers of one runner seen running at once: "several" (WORKERS on a quiet machine).
IN_FLIGHT = 3

pytestmark = pytest.mark.slow


def _script(action: str) -> subprocess.CompletedProcess[str]:
    return second_dockerd(action, SECOND_DAEMON_ENV, timeout=120)


@pytest.fixture(scope="module")
def second_daemon(docker_client: docker.DockerClient) -> Iterator[str]:
    """DOCKER_HOST of a second daemon, stopped afterwards; the first must still work."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a second Docker daemon needs root and dockerd")
    started = _script("start")
    if started.returncode != 0:
        pytest.fail(f"second dockerd did not start: {started.stderr.strip()}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        stopped = _script("stop")
        assert stopped.returncode == 0, stopped.stderr
    # The first daemon still has its bridge and runs a container.
    image = build_busybox_image(
        docker_client, session_tag(f"{TEST_IMAGE_PREFIX}d2-after"), "true\n"
    )
    container = docker_client.api.create_container(image)
    try:
        docker_client.api.start(container)
        assert docker_client.api.wait(container, timeout=60)["StatusCode"] == 0
    finally:
        docker_client.api.remove_container(container, force=True)
        remove_tags(docker_client, [image])


class ContainerSpans:
    """When the runners' containers started and died, as a daemon itself records it.

    Read from the daemon's event stream while the test runs (the daemon keeps
    only its last events, and the first daemon is shared), so that the
    record survives the containers' removal.
    """

    def __init__(self, *, client: docker.DockerClient) -> None:
        self._client = client
        self._stream: Any = None
        self._events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, name="docker-events", daemon=True)

    def start(self) -> None:
        """Subscribe (the daemon reports from this moment on) and read in the background."""
        filters = {
            "type": "container",
            "event": ["start", "die"],
            "label": [f"{LABEL_RUNNER}=1", f"{LABEL_HOST}={socket.gethostname()}"],
        }
        self._stream = self._client.api.events(filters=filters, decode=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream cut by close()
            for event in self._stream:
                self._events.append(event)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._reader.join(10)

    def most_at_once(self, pid: int) -> int:
        """The most containers of runner ``pid`` running at one instant (a tie ends first)."""
        steps = sorted(
            (int(event["timeNano"]), -1 if event["Action"] == "die" else 1)
            for event in list(self._events)
            if event["Actor"]["Attributes"].get(LABEL_PID) == str(pid)
        )
        most = running = 0
        for _, step in steps:
            running += step
            most = max(most, running)
        return most


def test_two_hosts_share_the_queue_and_a_killed_runner_is_left_to_its_own_host(
    tmp_path: Path,
    aws: AwsStack,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
    second_daemon: str,
) -> None:
    second = docker.DockerClient(base_url=second_daemon)
    image = session_tag(f"{TEST_IMAGE_PREFIX}d2-nap")
    for client in (docker_client, second):
        build_busybox_image(client, image, NAP_SCRIPT)
    match = new_match()
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry(image)},
        log_level="INFO",
        visibility_timeout=3,
        workers=WORKERS,
    )
    first_spans, second_spans = ContainerSpans(client=docker_client), ContainerSpans(client=second)
    left: list[str] = []
    try:
        first_spans.start()
        second_spans.start()
        refs = submit(aws, match, [[n] for n in range(TRIALS)])
        first_host = runners.start("evaluator", config)
        second_host = runners.start("evaluator", config, env={"DOCKER_HOST": second_daemon})
        wait_for(
            lambda: (
                "evaluation Success" in second_host.log()
                and len(runner_containers(second, second_host.pid, running=True)) >= IN_FLIGHT
            ),
            120,
            f"a job done and {IN_FLIGHT} containers running at once on the second daemon",
        )
        second_host.kill()
        # Its containers stay on its daemon. Those still running when it died are
        # checked: an ended one may have been handed to Docker for removal just
        # before the kill, and Docker finishes that removal on its own.
        left = [info["Id"] for info in runner_containers(second, second_host.pid, running=True)]
        assert left
        # The same host runs a runner again, on the FIRST daemon: its start-up reaper
        # sees only its own daemon, so the dead runner's containers stay.
        replacement = runners.start("evaluator", config)
        wait_for(
            lambda: len(scan_results(aws, "Evaluation")) >= TRIALS,
            180,
            f"{TRIALS} evaluations",
            interval=0.5,
        )
        # Untouched: all still there, and none was killed (a kill ends with 137).
        states = {container[:12]: _state(second, container) for container in left}
        assert all(s is not None and s["ExitCode"] == 0 for s in states.values()), states
        # Only a runner started again on that daemon reaps them.
        reaper = runners.start("evaluator", config, env={"DOCKER_HOST": second_daemon})
        wait_for(
            lambda: not runner_containers(second, second_host.pid),
            60,
            "the runner started on the second daemon to reap the dead runner's containers",
        )
        # It reaps during its start: stop it once it is ready (its SIGTERM handler is in).
        wait_for(lambda: " ready on " in reaper.log(), 60, "the reaping runner to be ready")
        for process in (first_host, replacement, reaper):
            process.signal(signal.SIGTERM)
        for process in (first_host, replacement, reaper):
            assert process.wait(60) == 0, process.log()[-3000:]
    finally:
        first_spans.close()
        second_spans.close()
        for container in left:
            with contextlib.suppress(docker.errors.NotFound):
                second.api.remove_container(container, force=True)
        second.close()
        remove_tags(docker_client, [image])
    results = scan_results(aws, "Evaluation")
    per_trial = Counter(r["TrialNo"] for r in results)
    assert sorted(per_trial) == sorted(ref.trial_no for ref in refs)
    assert set(per_trial.values()) == {1}
    assert {r["Status"] for r in results} == {"Success"}
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert "evaluation Success" in first_host.log()
    assert "evaluation Success" in second_host.log()  # both hosts worked before the kill
    # Each host really ran several containers at once, as its own daemon saw them.
    assert first_spans.most_at_once(first_host.pid) >= IN_FLIGHT
    assert second_spans.most_at_once(second_host.pid) >= IN_FLIGHT


def _state(client: docker.DockerClient, container: str) -> dict[str, Any] | None:
    """The container's State, or None when it is gone."""
    try:
        state: dict[str, Any] = client.api.inspect_container(container)["State"]
    except docker.errors.NotFound:
        return None
    return state


def test_a_runtime_that_cannot_create_containers_is_the_administrators_error(
    second_daemon: str, case_labels: dict[str, str]
) -> None:
    if shutil.which("crun") is None or not (UNIFIED.exists() and UNIFIED.read_text().strip()):
        pytest.skip("needs crun on a hybrid cgroup host with controllers on the v2 side")
    second = docker.DockerClient(base_url=second_daemon)
    image = build_busybox_image(second, f"{TEST_IMAGE_PREFIX}d2-ok:latest", "echo ok\n")
    spec = RunSpec(image=image, stdin_lines=[], timeout=20.0)
    labels = {**runner_labels("test"), **case_labels}
    try:
        runc = DockerExecutor(client=second, labels=labels)
        assert runc.run(spec, threading.Event()).stdout == "ok\n"
        crun = DockerExecutor(client=second, labels=labels, runtime="crun")
        with pytest.raises(ContainerRejected) as caught:
            crun.run(spec, threading.Event())
        assert "with runtime 'crun'" in str(caught.value)
        assert "hybrid" in str(caught.value)
        assert containers_labelled(second, case_labels) == []
    finally:
        second.close()
