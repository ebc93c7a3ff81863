"""Crash: a runner killed with SIGKILL in the middle of a job loses nothing.

Its message comes back after the heartbeat window (``visibility_timeout: 3``)
and another runner completes it; the container it left running is removed by
the next runner that starts on this host (found by its labels, its runner's
pid dead), while the containers of a runner that is still alive are left alone.
"""

from __future__ import annotations

import signal
import threading
from decimal import Decimal
from pathlib import Path

import docker

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from tests.support.docker_fixtures import ImageFactory, containers_labelled
from tests.support.e2e import make_worker, result_item

from .helpers import new_match, submit

#: Problem image that sleeps as many seconds as the solution says, then answers it.
SLEEP_AS_TOLD = 'IFS= read -r seconds\nsleep "$seconds"\necho "{\\"objective\\": $seconds}"\n'
VISIBILITY = 3
VICTIM_JOB = 4  # seconds
LIVE_JOB = 12  # seconds: still running when the second runner starts


def test_a_killed_runner_loses_nothing_and_its_container_is_reaped(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    image = image_factory("opthub-test/sleep-as-told:1", SLEEP_AS_TOLD)
    match = new_match()
    entry = {match: match_entry(image)}

    # A runner that stays alive, on a queue of its own, in the middle of a long job.
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    live_queue = aws.new_queue("live")
    # Without prestart: exactly one container of its own, the one that must survive.
    live_config = write_config(
        live_dir, aws, entry, evaluator_queue_url=live_queue, num=1, prestart=False
    )
    live_ref = TrialRef(match, "p-live", "0001")
    put_solution(aws.clients.dynamodb, aws.table_name, live_ref, LIVE_JOB)
    send_job(aws.clients.sqs, live_queue, live_ref)
    live = runners.start("evaluator", live_config)
    (live_container,) = wait_for(
        lambda: runner_containers(docker_client, live.pid, running=True), 30, "the live job"
    )

    # The victim takes its job, starts the container, and is killed.
    config = write_config(tmp_path, aws, entry, visibility_timeout=VISIBILITY)
    (ref,) = submit(aws, match, [VICTIM_JOB])
    victim = runners.start("evaluator", config)
    running_then = wait_for(
        lambda: runner_containers(docker_client, victim.pid, running=True), 30, "the victim's job"
    )
    victim.signal(signal.SIGKILL)
    victim.wait(10)  # reaped: a zombie would still look alive to a pid probe
    # With prestart (the default) a container started ahead for the next job is an orphan too.
    orphans = {c["Id"] for c in runner_containers(docker_client, victim.pid)}
    assert {c["Id"] for c in running_then} <= orphans

    # The next runner on this host removes the orphan at start, and only the orphan.
    successor = make_worker("evaluator", config, case_labels, num=1)
    assert runner_containers(docker_client, victim.pid) == []
    running = runner_containers(docker_client, live.pid, running=True)
    assert [c["Id"] for c in running] == [live_container["Id"]]

    # ...then completes the victim's message once its visibility lapses.
    thread = threading.Thread(target=successor.run, daemon=True)
    thread.start()
    thread.join(VISIBILITY + VICTIM_JOB + 30)
    assert not thread.is_alive()
    assert successor.stats.done == 1, successor.stats
    item = result_item(aws, "Evaluations", ref)  # exactly one result and one flag
    assert item["Status"] == "Success" and item["Objective"] == Decimal(VICTIM_JOB)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)

    # The live runner's job was never disturbed.
    assert live.wait(LIVE_JOB + 30) == 0, live.log()[-3000:]
    live_item = result_item(aws, "Evaluations", live_ref)
    assert live_item["Status"] == "Success" and live_item["Objective"] == Decimal(LIVE_JOB)
    assert queue_counts(aws, live_queue) == (0, 0, 0)
    assert runner_containers(docker_client, live.pid) == []
    assert containers_labelled(docker_client, case_labels) == []


def test_containers_kept_by_rm_false_survive_a_runner_restart(
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    runners: RunnerPool,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(sphere_image)}, rm=False, num=1)
    (ref,) = submit(aws, match, [[1, 2]])
    first = runners.start("evaluator", config)
    assert first.wait(120) == 0, first.log()[-3000:]
    assert result_item(aws, "Evaluations", ref)["Status"] == "Success"
    (kept,) = runner_containers(docker_client, first.pid)

    # The next runner on this host starts (and reaps what dead runners left to remove).
    make_worker("evaluator", config, case_labels, num=1)

    assert [c["Id"] for c in runner_containers(docker_client, first.pid)] == [kept["Id"]]
    logs = docker_client.api.logs(kept["Id"]).decode()
    assert "objective" in logs  # still there for ``docker logs``, as the docs advise
