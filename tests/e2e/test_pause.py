"""``opthub-runner pause`` and ``resume`` on a real runner process, the moto stack and Docker.

Paused mid-run, the runner finishes its running jobs, takes no new one while
its status line keeps coming, removes its containers started ahead, keeps its
page and metrics and says "paused" in each; ``status`` shows it; resumed, it
does the rest, each trial exactly once.
"""

from __future__ import annotations

import re
import signal
import uuid
from decimal import Decimal
from pathlib import Path

import docker

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.runners import (
    RunnerPool,
    RunnerProcess,
    runner_containers,
    wait_for,
)
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts

from ..support.docker_fixtures import ImageFactory
from ..support.e2e import items, result_item
from ..unit.test_observe import get, samples
from ..unit.test_pause_commands import cli
from .test_status_page import browse

SLOW = "cat >/dev/null\nsleep 2\necho '{\"objective\": 42}'\n"
JOBS = 8
_ADDRESS = re.compile(r"/healthz on http://(127\.0\.0\.1):(\d+)/")


def done(aws: AwsStack, refs: list[TrialRef]) -> int:
    return sum(1 for ref in refs if items(aws, "Evaluations", ref))


def status_lines(process: RunnerProcess) -> int:
    return process.log().count("evaluator status:")


def assert_shown_as_paused(base: str, runtime: Path, config: Path, runner: str) -> None:
    """/healthz, /metrics, the page (in a headless Chromium) and ``status`` say "paused"."""
    health = get(f"{base}/healthz")  # past health_stall_seconds without a poll: still healthy
    metrics = samples(get(f"{base}/metrics")[1])
    shown = browse(runtime, f"{base}/", "--dump-dom")
    assert shown.returncode == 0, shown.stderr
    banner = re.search(r'<p class="hold" id="hold-paused">([^<]*)</p>', shown.stdout)
    status = cli(runtime, "status", "--config", str(config))
    assert health[0] == 200 and health[1].startswith("ok (PAUSED for ")
    assert metrics["opthub_runner_paused{mode=evaluator}"] == 1
    assert banner is not None and banner.group(1).startswith("PAUSED for ")
    assert status.returncode == 0, status.stderr
    assert runner in status.stdout and ": PAUSED" in status.stdout


def test_a_paused_runner_finishes_its_jobs_takes_none_and_resumes(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    docker_client: docker.DockerClient,
) -> None:
    image = image_factory("opthub-test/slow-2s:1", SLOW)
    match = str(uuid.uuid4())
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry(image)},
        workers=2,
        prestart=True,
        metrics_port=0,
        status_interval=1,
        health_stall_seconds=5,
    )
    refs = [TrialRef(match, "p-1" if n % 2 else "p-2", f"{n:04d}") for n in range(1, JOBS + 1)]
    for n, ref in enumerate(refs, 1):
        put_solution(aws.clients.dynamodb, aws.table_name, ref, [n])
        send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
    runtime = tmp_path / "run"
    runners = RunnerPool(tmp_path, docker_client)
    try:
        process = runners.start("evaluator", config, env={"XDG_RUNTIME_DIR": str(runtime)})
        found = wait_for(lambda: _ADDRESS.search(process.log()), 60, "the monitor's address")
        base = f"http://{found.group(1)}:{found.group(2)}"
        wait_for(lambda: done(aws, refs) >= 2, 90, "the first results")
        # Running jobs and a container started ahead for the next one.
        wait_for(
            lambda: len(runner_containers(docker_client, process.pid, running=True)) >= 3,
            30,
            "the jobs' containers and one started ahead",
        )

        paused = cli(runtime, "pause", "--config", str(config))
        assert paused.returncode == 0, paused.stderr
        assert (
            f"Paused evaluator (pid {process.pid}, queue {aws.evaluator_queue_url}" in paused.stdout
        )

        # The jobs it ran finish; then nothing of it runs, warm containers included.
        wait_for(lambda: not runner_containers(docker_client, process.pid), 60, "no container left")
        wait_for(
            lambda: queue_counts(aws, aws.evaluator_queue_url)[1] == 0, 30, "nothing in flight"
        )
        at_pause = done(aws, refs)
        lines = status_lines(process)
        # Three more status lines (one a second): the loop ran, and took nothing.
        wait_for(lambda: status_lines(process) >= lines + 3, 30, "status lines while paused")
        assert done(aws, refs) == at_pause < JOBS
        assert queue_counts(aws, aws.evaluator_queue_url) == (JOBS - at_pause, 0, 0)
        assert "evaluator: paused: no new job is taken" in process.log()
        assert "; PAUSED for " in process.log()  # the status line says it

        assert_shown_as_paused(base, runtime, config, f"evaluator (pid {process.pid}, queue ")

        resumed = cli(runtime, "resume", "--config", str(config))
        assert resumed.returncode == 0, resumed.stderr
        assert f"Resumed evaluator (pid {process.pid}" in resumed.stdout
        wait_for(lambda: done(aws, refs) == JOBS, 120, "every trial evaluated")
        metrics = samples(get(f"{base}/metrics")[1])
        assert metrics["opthub_runner_paused{mode=evaluator}"] == 0
        assert "evaluator: paused no longer: taking new jobs again" in process.log()

        process.signal(signal.SIGTERM)
        assert process.wait(60) == 0
        for ref in refs:  # exactly one result (and one flag) per trial
            assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(42)
        assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
        assert runner_containers(docker_client, process.pid) == []
    finally:
        runners.cleanup()
