"""Container limits on the real daemon: each limit holds, is reported, and leaves nothing behind.

Each hostile program runs in a busybox image that evaluates its stdin line as
a shell program, under the limits given, through the real ``DockerExecutor``.
This machine runs cgroup v1 with Docker 20.10: the memory limit with swap
equal to it (OOMKilled in ``docker inspect``), the pids limit, the nofile
ulimit, the read-only root with a size-capped tmpfs, ``network: none``,
``no-new-privileges`` and dropped capabilities all hold there.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from opthub_runner_admin.executor import Execution, RunSpec
from opthub_runner_admin.executor.limits import ContainerLimits, GpuUnavailable
from opthub_runner_admin.jobs.evaluate import interpret_evaluation
from opthub_runner_admin.model import Failure
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ExecutorFactory,
    ImageFactory,
    containers_labelled,
)

#: Generous bound for a run that ends on its own (a hang fails, it does not wait).
NORMAL_TIMEOUT = 30.0
MIB = 1024 * 1024
#: The image: its stdin line is a shell program.
SHELL_SCRIPT = 'IFS= read -r program\neval "$program"\n'


@pytest.fixture(scope="module")
def shell_image(image_factory: ImageFactory) -> str:
    return image_factory(f"{TEST_IMAGE_PREFIX}isolation-shell:1", SHELL_SCRIPT)


def _run(
    make_executor: ExecutorFactory,
    image: str,
    program: str,
    limits: ContainerLimits,
    **executor_kwargs: Any,
) -> Execution:
    executor = make_executor(limits=limits, **executor_kwargs)
    spec = RunSpec(image=image, stdin_lines=[program], timeout=NORMAL_TIMEOUT)
    return executor.run(spec, threading.Event())


def _only_container(client: docker.DockerClient, labels: dict[str, str]) -> dict[str, Any]:
    (info,) = containers_labelled(client, labels)
    inspected: dict[str, Any] = client.api.inspect_container(info["Id"])
    return inspected


def test_the_default_limits_reach_docker_and_hold_inside(
    make_executor: ExecutorFactory,
    shell_image: str,
    docker_client: docker.DockerClient,
    case_labels: dict[str, str],
) -> None:
    program = "ulimit -n; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"
    execution = _run(make_executor, shell_image, program, ContainerLimits(), rm=False)
    assert execution.stdout.split() == ["4096", "CapEff:", "0000000000000000", "NoNewPrivs:", "1"]
    host = _only_container(docker_client, case_labels)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (4 * 1024 * MIB, 4 * 1024 * MIB)
    assert host["PidsLimit"] == 1024
    assert host["Ulimits"] == [{"Name": "nofile", "Hard": 4096, "Soft": 4096}]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["CapDrop"] == ["ALL"]
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-file": "1", "max-size": str(10 * MIB)},
    }
    assert host["NetworkMode"] == "bridge"
    assert not host["ReadonlyRootfs"]


def test_a_memory_hog_is_killed_and_reported_with_the_limit(
    make_executor: ExecutorFactory,
    shell_image: str,
    docker_client: docker.DockerClient,
    case_labels: dict[str, str],
) -> None:
    # dd's buffer of 256 MiB is filled from /dev/zero: every page is touched.
    program = "dd if=/dev/zero of=/dev/null bs=256M count=1 || exit 1"
    execution = _run(make_executor, shell_image, program, ContainerLimits(memory=32 * MIB))
    assert execution.oom_killed
    assert execution.memory_limit == 32 * MIB
    result = interpret_evaluation(execution, time_limit=NORMAL_TIMEOUT)
    assert isinstance(result, Failure)
    assert result.message.startswith("The evaluation exceeded the memory limit (32 MiB)")
    assert containers_labelled(docker_client, case_labels) == []


def test_the_same_allocation_passes_under_a_larger_limit(
    make_executor: ExecutorFactory, shell_image: str
) -> None:
    program = "dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null && echo fine"
    execution = _run(make_executor, shell_image, program, ContainerLimits(memory=64 * MIB))
    assert not execution.oom_killed
    assert execution.stdout == "fine\n"


def test_a_fork_storm_stops_at_the_pids_limit(
    make_executor: ExecutorFactory,
    shell_image: str,
    docker_client: docker.DockerClient,
    case_labels: dict[str, str],
) -> None:
    # Each round leaves one more process behind; the count of those started is printed.
    program = "n=0; while [ $n -lt 500 ]; do sleep 60 & n=$((n + 1)); echo $n; done"
    execution = _run(make_executor, shell_image, program, ContainerLimits(pids_limit=32))
    started = int(execution.stdout.split()[-1])
    assert started < 32, started
    assert "can't fork" in execution.stderr
    assert not execution.timed_out  # the shell died at the limit, its sleepers with it
    assert containers_labelled(docker_client, case_labels) == []


def test_a_tmp_filler_stops_at_the_tmpfs_size_and_the_root_is_read_only(
    make_executor: ExecutorFactory, shell_image: str
) -> None:
    program = "dd if=/dev/zero of=/tmp/fill bs=1M count=64; wc -c < /tmp/fill; echo x > /x; id -u"
    limits = ContainerLimits(read_only=True, tmpfs_size=8 * MIB, user="65534:65534")
    execution = _run(make_executor, shell_image, program, limits)
    assert "No space left on device" in execution.stderr
    assert "can't create /x: Read-only file system" in execution.stderr
    written, user = execution.stdout.split()
    assert 0 < int(written) <= 8 * MIB  # what the filler managed to write
    assert user == "65534"  # the configured user, who can still write /tmp


class _Listener:
    """A TCP server on every host address that greets and counts whoever connects."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"hello-from-the-host\n")


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.sock.close()


def bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address as containers on the default bridge see it."""
    (config, *_) = client.api.inspect_network("bridge")["IPAM"]["Config"]
    if config.get("Gateway"):
        return str(config["Gateway"])
    return str(ipaddress.ip_network(config["Subnet"])[1])  # Docker's default gateway


def test_network_none_cannot_reach_the_host(
    make_executor: ExecutorFactory,
    shell_image: str,
    docker_client: docker.DockerClient,
    listener: _Listener,
) -> None:
    program = f"nc -w 3 {bridge_gateway(docker_client)} {listener.port} 2>&1 || echo refused"
    bridged = _run(make_executor, shell_image, program, ContainerLimits(network="bridge"))
    if "hello-from-the-host" not in bridged.stdout:
        pytest.skip(f"this host's firewall keeps bridge containers from it: {bridged.stdout}")
    before = listener.connections
    isolated = _run(make_executor, shell_image, program, ContainerLimits(network="none"))
    assert "hello-from-the-host" not in isolated.stdout
    assert "Network is unreachable" in isolated.stdout
    assert listener.connections == before


@pytest.mark.parametrize(
    ("gpus", "request_fields"),
    [
        ("all", {"Count": -1, "DeviceIDs": []}),
        (("0", "1"), {"Count": 0, "DeviceIDs": ["0", "1"]}),
    ],
)
def test_a_gpu_request_reaches_docker_and_no_gpu_is_the_administrators_error(
    make_executor: ExecutorFactory,
    shell_image: str,
    docker_client: docker.DockerClient,
    case_labels: dict[str, str],
    gpus: str | tuple[str, ...],
    request_fields: dict[str, Any],
) -> None:
    limits = ContainerLimits(gpus=gpus)
    try:
        _run(make_executor, shell_image, "echo ran", limits, rm=False)
        has_gpu = True
    except GpuUnavailable as exc:
        has_gpu = False
        message = str(exc)
        assert "'gpus' setting" in message and "could not select device driver" in message
        assert "\n" not in message
    (request,) = _only_container(docker_client, case_labels)["HostConfig"]["DeviceRequests"]
    assert request["Capabilities"] == [["gpu"]]
    assert {key: request[key] for key in request_fields} == request_fields
    if not has_gpu:  # and with rm (the default) nothing is left behind
        docker_client.api.remove_container(
            containers_labelled(docker_client, case_labels)[0]["Id"], force=True
        )
        with pytest.raises(GpuUnavailable):
            _run(make_executor, shell_image, "echo ran", limits)
        assert containers_labelled(docker_client, case_labels) == []


def test_more_cpus_than_the_host_has_is_refused_at_start(
    docker_client: docker.DockerClient,
) -> None:
    from opthub_runner_admin.config.loading import parse_config
    from opthub_runner_admin.errors import ConfigError
    from opthub_runner_admin.runner.parts import build_executor

    host_cpus = int(docker_client.info()["NCPU"])
    too_many = parse_config(f"region_name: r\ntable_name: t\ncpus: {host_cpus + 1}\n").config
    with pytest.raises(ConfigError) as caught:
        build_executor(too_many, docker_client, {})
    assert f"Docker's host has {host_cpus} CPUs" in str(caught.value)
    enough = parse_config(f"region_name: r\ntable_name: t\ncpus: {host_cpus}\n").config
    assert build_executor(enough, docker_client, {}) is not None
