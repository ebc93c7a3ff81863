"""Docker restarted under a running runner, again and again: nobody fails, nothing is left.

A second daemon of the test's own (``scripts/second-dockerd.sh``, never the
machine's shared one) is stopped and started again three times while one
evaluator with the default configuration (containers started ahead) and four
workers runs short jobs on it, fed in batches. A restart without live-restore
kills every container: the jobs that ran are handed back, never written as
the participant's failure, and the runner, which must not exit, removes what
the daemon still holds of them once it answers again, not only at its next
start. Once each batch is done the runner holds its warm pool alone (no more
than the jobs it ran at once: one match) and as many threads as before the
first restart: a job that met the restart as it took its container started
ahead must neither stay in the pool's count of runs (the pool would keep one
more for good) nor leave that container to nobody. After its clean stop, no
container carrying its labels is left on the daemon.

Needs root (a daemon, a bridge); skipped otherwise, and when ``dockerd`` is
not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from opthub_runner_admin.demo.images import SPHERE_SCRIPT, build_busybox_image
from opthub_runner_admin.executor.docker.reaping import LABEL_PID, LABEL_RUNNER, LABEL_WARM
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool, wait_for
from opthub_runner_admin.platform_side.second_daemon import second_dockerd
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts, scan_results
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, session_tag

from .helpers import new_match, submit

DAEMON_ENV = {
    "OPTHUB_BENCH_STATE": "/run/opthub-test-restarts",
    "OPTHUB_BENCH_DATA": "/var/lib/opthub-test-restarts",
    "OPTHUB_BENCH_BRIDGE": "otr0",
    "OPTHUB_BENCH_SUBNET": "172.31.243.1/24",
}
#: Jobs before the first restart (the runner's level), then in each restart's batch:
#: enough for BEFORE_RESTART results, WORKERS jobs running at the restart and as many
#: after it again (more jobs add time, not cases).
FIRST_BATCH = 12
BATCH = 16
RESTARTS = 3
TRIALS = FIRST_BATCH + RESTARTS * BATCH
WORKERS = 4
#: Results of a batch written before its restart (jobs are then running).
BEFORE_RESTART = 6
#: The warm pool's size with one match: as many containers as its jobs ran at once.
POOL = WORKERS
#: Threads the idle runner may have beyond its level before the first restart (each
#: container started ahead that it kept too many has one output thread).
THREAD_SLACK = 2

pytestmark = pytest.mark.slow


def _script(action: str) -> subprocess.CompletedProcess[str]:
    done = second_dockerd(action, DAEMON_ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def restartable_daemon(docker_client: docker.DockerClient) -> Iterator[str]:
    """DOCKER_HOST of a daemon of this test's own, stopped afterwards."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a second Docker daemon needs root and dockerd")
    host = _script("start").stdout.strip().splitlines()[-1]
    try:
        yield host
    finally:
        _script("stop")


def _mine(client: docker.DockerClient, pid: int) -> list[dict[str, Any]]:
    """The runner's containers on the daemon (its own labels), [] while the daemon is away."""
    try:
        found: list[dict[str, Any]] = client.api.containers(
            all=True, filters={"label": [f"{LABEL_RUNNER}=1", f"{LABEL_PID}={pid}"]}
        )
    except docker.errors.DockerException:
        return []
    return found


def _threads(pid: int) -> int:
    """The runner process's threads now."""
    return len(os.listdir(f"/proc/{pid}/task"))


def _idle_pool(daemon: docker.DockerClient, pid: int) -> list[dict[str, Any]]:
    """The runner's containers once it holds its warm pool alone (else [])."""
    held = _mine(daemon, pid)
    alone = all(
        (c.get("Labels") or {}).get(LABEL_WARM) == "true" and c["State"] == "running" for c in held
    )
    return held if held and alone else []


def test_docker_restarted_three_times_fails_nobody_and_leaves_no_container(
    tmp_path: Path,
    aws: AwsStack,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
    restartable_daemon: str,
) -> None:
    daemon = docker.DockerClient(base_url=restartable_daemon)
    image = session_tag(f"{TEST_IMAGE_PREFIX}restart-sphere")
    build_busybox_image(daemon, image, SPHERE_SCRIPT)
    match = new_match()
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry(image)},
        log_level="INFO",
        visibility_timeout=5,
        workers=WORKERS,
    )
    refs = submit(aws, match, [[n, 1] for n in range(FIRST_BATCH)])
    runner = runners.start("evaluator", config, env={"DOCKER_HOST": restartable_daemon})

    def done() -> int:
        return len(scan_results(aws, "Evaluation"))

    def reached(count: int) -> Callable[[], bool]:
        return lambda: done() >= count

    def settled(batch: str) -> int:
        """Once the batch is done and the runner idles: its threads (its pool checked)."""
        wait_for(reached(len(refs)), 300, f"every trial of {batch}")
        # The pool refills up to the runs seen at once, then holds: no more than POOL,
        # whatever the restarts did (a stray swept, a lost count not kept).
        try:
            wait_for(
                lambda: 0 < len(_idle_pool(daemon, runner.pid)) <= POOL,
                60,
                f"the warm pool alone (at most {POOL}) after {batch}",
            )
        except AssertionError as exc:
            held = [(c["Names"], c["State"]) for c in _mine(daemon, runner.pid)]
            raise AssertionError(f"{exc}: the runner holds {len(held)}: {held}") from None
        return _threads(runner.pid)

    before = settled("the first batch")
    for restart in range(RESTARTS):
        first = len(refs) + 1
        refs += submit(
            aws, match, [[n, 1] for n in range(first - 1, first - 1 + BATCH)], first=first
        )
        # Restart while jobs run and take their containers started ahead.
        wait_for(
            reached(first - 1 + BEFORE_RESTART),
            120,
            f"jobs running before restart {restart + 1}",
        )
        _script("stop")
        time.sleep(2)
        assert runner.popen.poll() is None, runner.log()[-3000:]  # waits, never exits
        _script("start")  # the client connects anew for each call
        settled(f"restart {restart + 1}")
        # Threads go back to their level: no output thread of a container nobody holds.
        wait_for(
            lambda: _threads(runner.pid) <= before + THREAD_SLACK,
            60,
            f"at most {before} + {THREAD_SLACK} threads after restart {restart + 1}",
        )

    assert len(refs) == TRIALS
    assert runner.popen.poll() is None, runner.log()[-3000:]  # 0 runner exits
    log = runner.log()
    assert "Docker is not answering" in log and "Docker answers again" in log, log[-3000:]
    # Once Docker answers, what it kept of the killed jobs goes, while the runner still
    # runs: only the containers started ahead for the next job stay, labelled so.
    wait_for(
        lambda: (
            (left := _mine(daemon, runner.pid))
            and all(
                (c.get("Labels") or {}).get(LABEL_WARM) == "true" and c["State"] != "exited"
                for c in left
            )
        ),
        60,
        "only containers started ahead (warm) left while the runner runs",
    )

    runner.signal(signal.SIGTERM)
    assert runner.wait(120) == 0, runner.log()[-3000:]
    assert _mine(daemon, runner.pid) == []  # 0 containers left on the restarted daemon
    results = scan_results(aws, "Evaluation")
    per_trial = Counter(str(item["TrialNo"]) for item in results)
    assert sorted(per_trial) == sorted(ref.trial_no for ref in refs)
    assert set(per_trial.values()) == {1}  # one result per trial
    assert {item["Status"] for item in results} == {"Success"}, [
        item.get("ErrorMessage") for item in results
    ]  # 0 participant failures
    variables = {ref.trial_no: n for n, ref in enumerate(refs)}
    for item in results:
        n = variables[str(item["TrialNo"])]
        assert item["Objective"] == Decimal(n * n + 1)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert "Traceback" not in runner.log()
    daemon.close()
