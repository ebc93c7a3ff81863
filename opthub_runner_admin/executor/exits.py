"""Whose doing a container's end by a signal was: the image's, or someone outside.

A container's exit code is 128+N when its main process died of signal N. A
program meets some signals by its own fault (a segfault, an abort, a broken
pipe, a seccomp violation, a resource limit it crossed): those end the trial
like any other failure. Others only ever come from outside the container: a
process in the container cannot even deliver SIGKILL to its own PID 1, so a
main process killed by SIGKILL was killed by the kernel's memory limit (Docker
says ``OOMKilled``, or the cgroup counts a kill at its limit), by the runner
(its timeout or the operator's cancel, which the runner knows it sent), or by
someone else: ``docker kill``, a daemon restart, the host killing outside the
container's limit. That last case is the runner's fault, never the
participant's: the trial is not decided by it.
"""

from __future__ import annotations

import signal

#: Signals a container's process does not raise by its own fault: an end by one of them
#: that neither the runner nor the memory limit caused came from outside the container.
OUTSIDE_SIGNALS = frozenset(
    {
        signal.SIGHUP,
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGKILL,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGTERM,
    }
)

#: Exit codes above this mean "ended by signal (code - 128)" (the shell's and Docker's rule).
_SIGNAL_BASE = 128
#: A kill the container's cgroup counts is its memory limit's when its peak came this close
#: to the limit (the kernel kills at the limit; the share leaves room for a late reading).
LIMIT_REACHED_SHARE = 0.95


def memory_limit_kill(
    *, docker_says: bool, kills: int | None, peak: int | None, limit: int | None
) -> bool:
    """Whether the container's memory limit killed a process of it.

    ``docker_says`` is Docker's ``OOMKilled``, which comes from an event that
    may reach Docker after the exit it explains (then it stays false).
    ``kills`` is the kernel's own count in the container's cgroup, which does
    not wait on that event but counts the host's OOM killer too: the host out
    of memory is not the container over its limit (that kill is from outside),
    so a count is the limit's only when the ``peak`` reached the ``limit``.
    """
    if docker_says:
        return True
    if not kills or peak is None or limit is None:
        return False
    return peak >= limit * LIMIT_REACHED_SHARE


def outside_signal(
    exit_code: int | None, *, killed_by_runner: bool, oom_killed: bool
) -> int | None:
    """The signal that ended the container from outside, or None when the image ended itself.

    ``killed_by_runner`` is the runner's own kill (timeout, cancel);
    ``oom_killed`` the memory limit's: both are the run's ordinary ends.
    """
    if killed_by_runner or oom_killed or exit_code is None or exit_code <= _SIGNAL_BASE:
        return None
    number = exit_code - _SIGNAL_BASE
    return number if number in OUTSIDE_SIGNALS else None


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 40`` for a number without a name here."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
