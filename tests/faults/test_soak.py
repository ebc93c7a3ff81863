"""The fault soak, briefly: a few dozen trials through real runners while faults strike.

``benchmarks/soak.py`` is what the README's guarantee figures come from; this
runs it small (on moto, standard queues) and checks what it left, never how
long it took: every trial has exactly one correct evaluation and one correct
score, both queues and their dead-letter queues are empty, and no container
of the soak's runners is left.

The faults here are those the runner promises to ride out without a trace:
a runner killed, frozen past its visibility window, drained, the AWS
endpoint paused, a job's container killed from outside. A Docker daemon
restarted is measured by the benchmark (docs/guarantees.md, "The soak"),
where the figures say what it leaves today.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from benchmarks.soak import INDICATOR, PROBLEM_TAG, SoakSettings, run_soak
from tests.support.docker_fixtures import images_left_as_found

pytestmark = pytest.mark.slow

SETTINGS = SoakSettings(
    mode="standard",
    emulator="moto",
    trials=24,
    runners=2,
    workers=2,
    faults=5,
    seed=5,
    kinds=("kill", "freeze", "drain", "aws-pause", "container-kill"),
    # Jobs long enough, and faults close enough, for every fault to meet jobs in flight.
    job_seconds=1.5,
    visibility_timeout=3,
    fault_gap=(0.5, 1.5),
)


def test_a_brief_soak_leaves_one_correct_result_per_trial_and_nothing_else(
    tmp_path: Path, docker_client: docker.DockerClient, moto_of_its_own: None
) -> None:
    built = (PROBLEM_TAG.format(seconds=SETTINGS.job_seconds), INDICATOR[0])
    with images_left_as_found(docker_client, built):
        report = run_soak(SETTINGS, tmp_path, docker_client)
    summary = "\n".join(report.lines())
    assert sum(report.faults.values()) == SETTINGS.faults, summary
    assert (report.lost, report.doubled, report.wrong) == (0, 0, 0), summary
    assert report.participant_failures == 0, summary
    assert report.not_yet_scored == 0, summary
    assert set(report.messages_left.values()) == {0}, summary
    assert report.containers_left == 0, summary
