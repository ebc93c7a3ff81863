"""``opthub-runner stop``: drains the runners of this machine, or cancels their jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import docker

from opthub_runner_admin import pidfiles
from opthub_runner_admin.demo.stack import put_solution, send_job
from opthub_runner_admin.model import TrialRef

from .support.aws_fixtures import AwsStack
from .support.docker_fixtures import ImageFactory, containers_labelled
from .support.e2e import items, match_entry, queue_counts, result_item, write_config

SLOW = "cat >/dev/null\nsleep 3\necho '{\"objective\": 42}'\n"


def start_runner(
    tmp_path: Path, aws: AwsStack, image: str, runtime: Path
) -> tuple[subprocess.Popen[str], TrialRef]:
    match = str(uuid.uuid4())
    config = write_config(tmp_path, aws, {match: match_entry(image)}, visibility_timeout=30)
    ref = TrialRef(match, "p-1", "0001")
    put_solution(aws.clients.dynamodb, aws.table_name, ref, [1])
    send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime)}
    process = subprocess.Popen(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, ref


def wait_for_container(client: docker.DockerClient, pid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if containers_labelled(client, {"opthub-runner.pid": str(pid)}):
            return
        time.sleep(0.1)
    raise AssertionError("the runner never started its container")


def stop(runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "stop", *args, "--timeout", "120"],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def test_stop_lets_the_running_job_finish(
    tmp_path: Path, aws: AwsStack, image_factory: ImageFactory, docker_client: docker.DockerClient
) -> None:
    runtime = tmp_path / "run"
    image = image_factory("opthub-test/slow-3s:1", SLOW)
    process, ref = start_runner(tmp_path, aws, image, runtime)
    try:
        wait_for_container(docker_client, process.pid)
        assert [r.pid for r in pidfiles.running("evaluator", runtime / "opthub-runner")] == [
            process.pid
        ]
        result = stop(runtime, "evaluator")
        assert result.returncode == 0, result.stderr
        assert f"Stopping evaluator (pid {process.pid})" in result.stdout
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(42)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert containers_labelled(docker_client, {"opthub-runner.pid": str(process.pid)}) == []
    assert pidfiles.running(None, runtime / "opthub-runner") == []


def test_stop_now_cancels_the_job_and_hands_the_message_back(
    tmp_path: Path, aws: AwsStack, image_factory: ImageFactory, docker_client: docker.DockerClient
) -> None:
    runtime = tmp_path / "run"
    image = image_factory("opthub-test/slow-3s:1", SLOW)
    process, ref = start_runner(tmp_path, aws, image, runtime)
    try:
        wait_for_container(docker_client, process.pid)
        result = stop(runtime, "--now")
        assert result.returncode == 0, result.stderr
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert items(aws, "Evaluations", ref) == []
    # Visible again at once, although the heartbeat window is 30 s.
    assert queue_counts(aws, aws.evaluator_queue_url) == (1, 0, 0)
    assert containers_labelled(docker_client, {"opthub-runner.pid": str(process.pid)}) == []


def test_stop_with_nothing_running(tmp_path: Path) -> None:
    result = stop(tmp_path / "run")
    assert result.returncode == 0
    assert "No running opthub-runner" in result.stdout
