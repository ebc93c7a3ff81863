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

from opthub_runner_admin.host import pidfiles
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts

from ..support.docker_fixtures import ImageFactory, containers_labelled
from ..support.e2e import items, result_item

SLOW = "cat >/dev/null\nsleep 3\necho '{\"objective\": 42}'\n"


def start_runner(
    folder: Path, aws: AwsStack, image: str, runtime: Path, queue_url: str | None = None
) -> tuple[subprocess.Popen[str], Path, TrialRef]:
    """A runner (its config in ``folder``) with one slow job of ``queue_url`` already queued."""
    queue_url = queue_url or aws.evaluator_queue_url
    match = str(uuid.uuid4())
    config = write_config(
        folder,
        aws,
        {match: match_entry(image)},
        visibility_timeout=30,
        evaluator_queue_url=queue_url,
    )
    ref = TrialRef(match, "p-1", "0001")
    put_solution(aws.clients.dynamodb, aws.table_name, ref, [1])
    send_job(aws.clients.sqs, queue_url, ref)
    env = {**os.environ, "HOME": str(folder), "XDG_RUNTIME_DIR": str(runtime)}
    process = subprocess.Popen(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, config, ref


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
    process, _, ref = start_runner(tmp_path, aws, image, runtime)
    try:
        wait_for_container(docker_client, process.pid)
        assert [r.pid for r in pidfiles.running("evaluator", runtime / "opthub-runner")] == [
            process.pid
        ]
        result = stop(runtime, "evaluator")
        assert result.returncode == 0, result.stderr
        assert (
            f"Stopping evaluator (pid {process.pid}, queue {aws.evaluator_queue_url}"
            in result.stdout
        )
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
    process, _, ref = start_runner(tmp_path, aws, image, runtime)
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


# -- several competitions on one host ---------------------------------------


def start_runner_on(
    tmp_path: Path, aws: AwsStack, image: str, runtime: Path, name: str
) -> tuple[subprocess.Popen[str], Path, TrialRef]:
    """A runner of its own queue (and config folder), with one slow job already running."""
    folder = tmp_path / name
    folder.mkdir()
    return start_runner(folder, aws, image, runtime, aws.new_queue(name))


def test_stop_with_a_config_stops_only_that_queues_runner(
    tmp_path: Path, aws: AwsStack, image_factory: ImageFactory, docker_client: docker.DockerClient
) -> None:
    runtime = tmp_path / "run"
    image = image_factory("opthub-test/slow-3s:1", SLOW)
    first, first_config, first_ref = start_runner_on(tmp_path, aws, image, runtime, "compa")
    second, _, second_ref = start_runner_on(tmp_path, aws, image, runtime, "compb")
    try:
        wait_for_container(docker_client, first.pid)
        wait_for_container(docker_client, second.pid)
        # The job's container, and the one started ahead for the next job if it is
        # there yet: each names its competition, which is what stop and the reaper read.
        containers = containers_labelled(docker_client, {"opthub-runner.pid": str(first.pid)})
        assert 1 <= len(containers) <= 2
        for container in containers:
            assert "/compa-" in container["Labels"]["opthub-runner.queue"]
            assert container["Labels"]["opthub-runner.table"] == aws.table_name

        result = stop(runtime, "--config", str(first_config))
        assert result.returncode == 0, result.stderr
        assert f"Stopping evaluator (pid {first.pid}, queue " in result.stdout
        assert str(second.pid) not in result.stdout
        assert first.wait(30) == 0
        # The other competition's runner and its job were left alone.
        assert second.poll() is None
        assert [r.pid for r in pidfiles.running(None, runtime / "opthub-runner")] == [second.pid]

        result = stop(runtime)  # both left runners write one table: no --all needed
        assert result.returncode == 0, result.stderr
        assert second.wait(30) == 0
    finally:
        first.kill()
        second.kill()
    for ref in (first_ref, second_ref):
        assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(42)


def fake_runner(runtime: Path, mode: str, queue: str, table: str) -> subprocess.Popen[bytes]:
    """A live process named like a runner, with the pid file a runner of ``queue`` writes."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "opthub-runner"]
    )
    folder = runtime / "opthub-runner"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{mode}-{process.pid}.pid").write_text(
        f"{process.pid}\nqueue={queue}\ntable={table}\n", encoding="utf-8"
    )
    return process


def test_stop_without_config_asks_which_competition_when_several_run(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    ours = fake_runner(runtime, "evaluator", "https://sqs.example/1/a", "table-a")
    theirs = fake_runner(runtime, "scorer", "https://sqs.example/1/b", "table-b")
    try:
        result = stop(runtime)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "Error: runners of 2 tables run on this machine (table-a, table-b): pass --config"
            " with the config.yml of the competition to stop, or --all to stop them all"
        )
        assert ours.poll() is None and theirs.poll() is None  # nobody was signalled

        result = stop(runtime, "--all")
        assert result.returncode == 0, result.stderr
        assert ours.wait(10) == -15 and theirs.wait(10) == -15
    finally:
        ours.kill()
        theirs.kill()
