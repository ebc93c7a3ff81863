"""A container killed from outside the runner is the runner's fault, not the participant's.

``docker kill`` (or a daemon restart, or the host killing outside the
container's limit) ends a container by a signal the runner did not send: the
trial is not decided, its message goes back to the queue (bounded) and the
log names the signal. A memory kill and the runner's own timeout still end
the trial as before. Real containers, killed by the real daemon.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.executor import Execution, RunSpec
from opthub_runner_admin.executor.exits import outside_signal
from opthub_runner_admin.executor.limits import ContainerLimits
from opthub_runner_admin.jobs.evaluate import EvaluateJob
from opthub_runner_admin.jobs.outcome import Done, HandBack
from opthub_runner_admin.jobs.trial_job import OUTSIDE_KILL_RECEIVES
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from opthub_runner_admin.store.memory import MemoryStore
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ExecutorFactory,
    ImageFactory,
    containers_labelled,
)
from tests.support.e2e import items, result_item
from tests.unit.test_jobs import Matches, ctx, message, ran, ref, scripted

from .helpers import new_match, submit

#: Sleeps as many seconds as its stdin line says, then prints them as the objective. A
#: TERM ends it as a process without a handler would end (a shell as PID 1 ignores TERM).
SLEEP_AS_TOLD = (
    "trap 'exit 143' TERM\n"
    "IFS= read -r seconds\n"
    'sleep "$seconds" &\n'
    "wait $!\n"
    'echo "{\\"objective\\": $seconds}"\n'
)
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def sleep_image(image_factory: ImageFactory) -> str:
    return image_factory(f"{TEST_IMAGE_PREFIX}outside-kill:1", SLEEP_AS_TOLD)


def _run_and_kill(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
    image: str,
    kill_signal: str,
) -> Execution:
    """Run a 30-second job and ``docker kill -s <kill_signal>`` its container once it runs."""
    executor = make_executor()
    spec = RunSpec(image=image, stdin_lines=["30"], timeout=60)
    result: list[Execution] = []
    runner = threading.Thread(target=lambda: result.append(executor.run(spec, threading.Event())))
    runner.start()
    wait_for(
        lambda: any(
            c["State"] == "running" for c in containers_labelled(docker_client, case_labels)
        ),
        30,
        "the container to run",
    )
    time.sleep(0.5)  # the trap is set and the job sleeps
    (container,) = containers_labelled(docker_client, case_labels)
    docker_client.api.kill(container["Id"], signal=kill_signal)
    runner.join(30)
    assert result, "the run did not end after the kill"
    return result[0]


@pytest.mark.parametrize(("kill_signal", "number"), [("SIGKILL", 9), ("SIGTERM", 15)])
def test_a_docker_kill_is_reported_as_an_outside_signal(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
    sleep_image: str,
    kill_signal: str,
    number: int,
) -> None:
    execution = _run_and_kill(docker_client, make_executor, case_labels, sleep_image, kill_signal)
    assert execution.exit_code == 128 + number
    assert execution.outside_signal == number
    assert not execution.timed_out and not execution.oom_killed


def test_the_runners_own_timeout_and_a_memory_kill_are_no_outside_signal(
    make_executor: ExecutorFactory, sleep_image: str, image_factory: ImageFactory
) -> None:
    timed_out = make_executor().run(
        RunSpec(image=sleep_image, stdin_lines=["30"], timeout=1), threading.Event()
    )
    assert timed_out.timed_out and timed_out.outside_signal is None
    # PID 1 itself (dd, exec'd) is killed for memory: exit 137 and OOMKilled.
    hog = image_factory(
        f"{TEST_IMAGE_PREFIX}outside-kill-hog:1",
        "exec dd if=/dev/zero of=/dev/null bs=256M count=1\n",
    )
    executor = make_executor(limits=ContainerLimits(memory=32 * MIB))
    killed = executor.run(RunSpec(image=hog, stdin_lines=[], timeout=30), threading.Event())
    assert killed.oom_killed and killed.exit_code == 137
    assert killed.outside_signal is None


def test_only_signals_from_outside_count() -> None:
    def outside(code: int | None, **kw: bool) -> int | None:
        return outside_signal(
            code, killed_by_runner=kw.get("runner", False), oom_killed=kw.get("oom", False)
        )

    assert outside(137) == signal.SIGKILL
    assert outside(143) == signal.SIGTERM
    assert outside(137, runner=True) is None
    assert outside(137, oom=True) is None
    assert outside(139) is None  # a segfault is the program's own
    assert outside(134) is None  # an abort too
    assert outside(1) is None and outside(0) is None and outside(None) is None


def _killed(code: int = 137) -> Execution:
    plain = ran(exit_code=code)
    return Execution(
        exit_code=plain.exit_code,
        stdout="",
        stderr="",
        timed_out=False,
        started_at=plain.started_at,
        finished_at=plain.finished_at,
        outside_signal=code - 128,
    )


def test_the_job_puts_the_message_back_until_the_last_receive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    store.put_solution(ref(), [1, 2])
    executor = scripted(*[_killed() for _ in range(OUTSIDE_KILL_RECEIVES)])
    job = EvaluateJob(store=store, matches=Matches(), executor=executor, timeout=60)
    with caplog.at_level(logging.ERROR):
        for receive in range(1, OUTSIDE_KILL_RECEIVES):
            outcome = job(message(ref(), receive_count=receive), ctx())
            assert isinstance(outcome, HandBack)  # released: bounded
            assert "SIGKILL" in outcome.reason
    assert store.evaluation_items() == []
    assert "killed by SIGKILL from outside the runner" in caplog.text
    # Killed at every receive: the image's own exit after all, settled as today.
    outcome = job(message(ref(), receive_count=OUTSIDE_KILL_RECEIVES), ctx())
    assert isinstance(outcome, Done) and outcome.summary == "evaluation Failed"


def test_a_runner_puts_back_the_trials_whose_containers_were_killed(
    tmp_path: Path,
    aws: AwsStack,
    sleep_image: str,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    # No container started ahead: the two running containers are the two jobs' own.
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry(sleep_image)},
        num=2,
        workers=2,
        log_level="INFO",
        prestart=False,
    )
    # Two participants: one participant's trials run one at a time.
    refs = [
        *submit(aws, match, [3], participant="p-1"),
        *submit(aws, match, [3], participant="p-2"),
    ]
    runner = runners.start("evaluator", config)
    wait_for(
        lambda: len(runner_containers(docker_client, runner.pid, running=True)) == 2, 30, "the jobs"
    )
    time.sleep(0.5)  # both traps are set
    first, second = runner_containers(docker_client, runner.pid, running=True)
    docker_client.api.kill(first["Id"], signal="SIGKILL")
    docker_client.api.kill(second["Id"], signal="SIGTERM")
    wait_for(
        lambda: "SIGKILL from outside" in runner.log() and "SIGTERM from outside" in runner.log(),
        30,
        "the log to name both signals",
    )
    # Nothing was written for the killed runs: both messages went back.
    assert all(items(aws, "Evaluations", r) == [] for r in refs)
    assert runner.wait(90) == 0, runner.log()[-3000:]
    for r in refs:  # run again, and Success: the participant never saw a failure
        item = result_item(aws, "Evaluations", r)
        assert item["Status"] == "Success" and item["Objective"] == Decimal(3)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert "Traceback" not in runner.log()
