"""Whose doing a container's end was: the memory limit's, the runner's, or someone outside's."""

from __future__ import annotations

import signal

import pytest

from opthub_runner_admin.executor.exits import memory_limit_kill, outside_signal

MIB = 1024 * 1024
LIMIT = 32 * MIB


@pytest.mark.parametrize(
    ("docker_says", "kills", "peak", "limit", "expected"),
    [
        (True, None, None, LIMIT, True),  # Docker's flag, nothing read
        (False, 1, LIMIT, LIMIT, True),  # Docker's event came late: the cgroup's count tells
        (False, 1, 31 * MIB, LIMIT, True),  # a reading a little before the very peak
        (False, 1, 8 * MIB, LIMIT, False),  # the host's OOM killer, far under the limit
        (False, 0, LIMIT, LIMIT, False),  # at the limit, reclaimed, nobody killed
        (False, None, LIMIT, LIMIT, False),  # no count on this kernel: Docker's flag alone
        (False, 1, LIMIT, None, False),  # no limit at all: only the host can have killed
        (False, 1, None, LIMIT, False),  # no peak read
    ],
)
def test_a_memory_kill_is_the_limit_s_when_docker_says_so_or_the_cgroup_counts_it_there(
    docker_says: bool, kills: int | None, peak: int | None, limit: int | None, expected: bool
) -> None:
    assert (
        memory_limit_kill(docker_says=docker_says, kills=kills, peak=peak, limit=limit) == expected
    )


def test_a_sigkill_from_the_host_s_oom_killer_stays_an_outside_signal() -> None:
    # The host out of memory killed the main process: the cgroup counts the kill, but the
    # container was far under its limit: not the participant's failure, handed back.
    limit_kill = memory_limit_kill(docker_says=False, kills=1, peak=8 * MIB, limit=LIMIT)
    exit_code = 128 + signal.SIGKILL
    assert outside_signal(exit_code, killed_by_runner=False, oom_killed=limit_kill) == 9
    at_limit = memory_limit_kill(docker_says=False, kills=1, peak=LIMIT, limit=LIMIT)
    assert outside_signal(exit_code, killed_by_runner=False, oom_killed=at_limit) is None
