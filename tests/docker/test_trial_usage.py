"""What a trial used, read from its container's own cgroup on the real daemon.

Each image does a known amount of work: holds 64 MiB, burns one second of
CPU time (counted by the kernel's own clock of the shell, not by a wall
clock), does nothing, or is killed for memory. The tolerances are stated at
each test: wide enough for a busy two-core machine, narrow enough that a
figure of another container, another unit or nothing at all fails.
"""

from __future__ import annotations

import threading

import docker
import pytest

from opthub_runner_admin.executor import Execution, RunSpec
from opthub_runner_admin.executor.docker.cgroups import UsageMeter, UsageWatch
from opthub_runner_admin.executor.limits import ContainerLimits
from opthub_runner_admin.platform_side.runners import wait_for
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ExecutorFactory, ImageFactory

MIB = 1024 * 1024
#: A run that ends on its own well before this.
NORMAL_TIMEOUT = 60.0

#: Waits for its input (a container started ahead waits there for its job), then dd fills
#: a 64 MiB buffer from /dev/zero (every page touched) and blocks writing it into a pipe
#: that sleep never reads: the 64 MiB stay resident for the second sleep runs.
HOLD_64_MIB = "read -r _ || true\ndd if=/dev/zero bs=64M count=1 2>/dev/null | sleep 1\necho held\n"
#: Busy until the shell's own user + system time reaches 100 ticks (USER_HZ is 100 on
#: Linux): one second of CPU time, however long the busy machine takes to give it.
BURN_ONE_CPU_SECOND = """
while :; do
  read -r stat < /proc/$$/stat
  set -- $stat
  [ $(( ${14} + ${15} )) -ge 100 ] && break
done
echo burnt
"""
TRIVIAL = "echo hi\n"
#: dd's 256 MiB buffer cannot fit in the 32 MiB limit: the kernel kills dd.
MEMORY_HOG = "dd if=/dev/zero of=/dev/null bs=256M count=1 || exit 1\n"


def _run(
    make_executor: ExecutorFactory,
    image_factory: ImageFactory,
    name: str,
    script: str,
    limits: ContainerLimits | None = None,
) -> Execution:
    image = image_factory(f"{TEST_IMAGE_PREFIX}usage-{name}:latest", script)
    executor = make_executor(limits=limits or ContainerLimits(memory=512 * MIB))
    return executor.run(
        RunSpec(image=image, stdin_lines=[], timeout=NORMAL_TIMEOUT), threading.Event()
    )


def test_a_container_holding_64_mib_shows_64_mib(
    make_executor: ExecutorFactory, image_factory: ImageFactory
) -> None:
    execution = _run(make_executor, image_factory, "hold", HOLD_64_MIB)
    assert execution.stdout == "held\n"
    usage = execution.usage
    assert usage.not_measured == ""
    assert usage.peak_memory is not None
    # Tolerance: the 64 MiB buffer, plus up to 24 MiB for busybox's processes, their page
    # tables and the image's files in the page cache.
    assert 64 * MIB <= usage.peak_memory <= 88 * MIB
    assert usage.cpu_seconds is not None and usage.cpu_seconds < usage.wall_seconds + 1


def test_a_container_burning_one_cpu_second_shows_one_second(
    make_executor: ExecutorFactory, image_factory: ImageFactory
) -> None:
    execution = _run(make_executor, image_factory, "burn", BURN_ONE_CPU_SECOND)
    assert execution.stdout == "burnt\n"
    usage = execution.usage
    assert usage.cpu_seconds is not None, usage.not_measured
    # Tolerance: the last reading may come up to 0.1 s before the end (the watch's longest
    # pause); the shell's start and its tick rounding add a little: 0.85 to 1.5 s.
    assert 0.85 <= usage.cpu_seconds <= 1.5
    # The CPU time of one process cannot exceed the time it ran.
    assert usage.cpu_seconds <= usage.wall_seconds + 0.1
    assert usage.peak_memory is not None and usage.peak_memory < 32 * MIB


def test_a_trivial_container_shows_small_figures(
    make_executor: ExecutorFactory, image_factory: ImageFactory
) -> None:
    execution = _run(make_executor, image_factory, "trivial", TRIVIAL)
    assert execution.stdout == "hi\n"
    usage = execution.usage
    assert usage.wall_seconds >= 0
    if usage.peak_memory is None:
        # It may end before the first reading: then the reason is given, never a zero.
        assert usage.not_measured.startswith("not measured: the container ended")
        pytest.skip("the container ended before its first reading on this run")
    # Tolerance: busybox echoing one line uses well under 16 MiB and 0.25 s of CPU.
    assert 0 < usage.peak_memory < 16 * MIB
    assert usage.cpu_seconds is not None and usage.cpu_seconds < 0.25


def test_a_container_killed_for_memory_shows_the_limit_as_its_peak(
    make_executor: ExecutorFactory, image_factory: ImageFactory
) -> None:
    execution = _run(
        make_executor, image_factory, "hog", MEMORY_HOG, ContainerLimits(memory=32 * MIB)
    )
    assert execution.oom_killed
    assert execution.usage.peak_memory == 32 * MIB


#: dd is killed for memory (its 256 MiB cannot fit in 32 MiB), and the container lives on.
HOG_THEN_WAIT = "dd if=/dev/zero of=/dev/null bs=256M count=1\necho done\nsleep 60\n"
TRIVIAL_THEN_WAIT = "echo done\nsleep 60\n"


@pytest.mark.parametrize(
    ("name", "work", "kills"), [("hog-wait", HOG_THEN_WAIT, 1), ("wait", TRIVIAL_THEN_WAIT, 0)]
)
def test_the_kernel_counts_its_memory_kills_in_the_containers_cgroup(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    name: str,
    work: str,
    kills: int,
) -> None:
    # Docker's OOMKilled comes from an event that may reach it after the exit (containerd
    # 1.6): the runner also reads the kernel's own count, checked here on the real cgroup.
    # The count covers the cgroup's whole life, and the container outlives its work, so
    # the last reading (finish) is taken while the cgroup is still there: whether a
    # reading at a container's very end comes in time on a busy machine is not this test's.
    image = image_factory(f"{TEST_IMAGE_PREFIX}usage-{name}:latest", work)
    container = docker_client.containers.run(
        image, detach=True, mem_limit=32 * MIB, memswap_limit=32 * MIB, labels=case_labels
    )
    try:
        watch = UsageMeter().start(container.id)
        assert isinstance(watch, UsageWatch), watch
        wait_for(lambda: b"done" in container.logs(), NORMAL_TIMEOUT, "the work done")
        figures = watch.finish()
    finally:
        container.remove(force=True)
    assert figures.memory_kills == kills, figures


def test_turned_off_the_figures_say_so(
    make_executor: ExecutorFactory, image_factory: ImageFactory
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}usage-trivial:latest", TRIVIAL)
    executor = make_executor(measure_usage=False)
    execution = executor.run(
        RunSpec(image=image, stdin_lines=[], timeout=NORMAL_TIMEOUT), threading.Event()
    )
    assert execution.usage.peak_memory is None and execution.usage.cpu_seconds is None
    assert execution.usage.not_measured == "not measured: turned off (measure_usage: false)"


def test_a_container_started_ahead_counts_from_its_start_and_says_so(
    make_executor: ExecutorFactory, image_factory: ImageFactory
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}usage-hold:latest", HOLD_64_MIB)
    executor = make_executor(prestart=True, limits=ContainerLimits(memory=512 * MIB))
    spec = RunSpec(image=image, stdin_lines=[], timeout=NORMAL_TIMEOUT)
    try:
        first = executor.run(spec, threading.Event())
        second = executor.run(spec, threading.Event())
    finally:
        executor.close()
    assert executor.warm_counts.reused >= 1
    assert first.usage.from_start is False
    assert second.usage.from_start is True
    # The same tolerance as a cold start: the figures are the container's whole life.
    assert second.usage.peak_memory is not None
    assert 64 * MIB <= second.usage.peak_memory <= 88 * MIB
