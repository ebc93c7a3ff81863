"""What a match's figures suggest for ``memory``, ``timeout`` and ``workers``, arithmetic shown.

Only a suggestion, once ``MIN_TRIALS`` trials were measured: nothing is
changed by itself. The memory limit leaves ``MEMORY_HEADROOM`` over the p99
of the peaks (a trial killed at the limit counts the limit as its peak, so
kills push the suggestion above the limit); the timeout leaves
``TIMEOUT_HEADROOM`` over the slowest trial (a trial killed at the timeout
counts the timeout). Workers are as many as ``HOST_MEMORY_SHARE`` of the
host's memory holds at the suggested limit, and as the host's cores run at
the trials' average cores busy, whichever is fewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..host.resources import HostResources
from ..settings.sizes import format_size
from .match_usage import MatchUsage

#: Measured trials before a match's figures suggest anything.
MIN_TRIALS = 30
#: The suggested memory limit is this many times the p99 of the peaks...
MEMORY_HEADROOM = 1.5
#: ...rounded up to a multiple of this (bytes).
MEMORY_STEP = 64 * 1024 * 1024
#: The suggested timeout is this many times the slowest trial...
TIMEOUT_HEADROOM = 2.0
#: ...rounded up to a multiple of this (seconds).
TIMEOUT_STEP = 10
#: Share of the host's memory the containers may take together (the rest: the system,
#: Docker, the runner, the page cache).
HOST_MEMORY_SHARE = 0.8
#: Below this, a trial's cores busy counts as this (waiting trials still hold a slot).
MIN_CORES_PER_TRIAL = 0.1


@dataclass(frozen=True)
class Suggestion:
    """The settings a match's figures suggest; ``lines`` shows how each was reached."""

    match: str
    memory: int
    timeout: int
    workers: int | None
    lines: tuple[str, ...]


def suggest(usage: MatchUsage, host: HostResources) -> Suggestion | str:
    """The suggestion, or one line saying why there is none yet."""
    if usage.measured < MIN_TRIALS or usage.peak_memory is None or usage.wall_seconds is None:
        return (
            f"match {usage.match}: {usage.measured} of {MIN_TRIALS} measured trials needed"
            " before a suggestion"
        )
    p99 = usage.peak_memory.p99
    memory = max(MEMORY_STEP, math.ceil(p99 * MEMORY_HEADROOM / MEMORY_STEP) * MEMORY_STEP)
    slowest = usage.wall_seconds.max
    timeout = max(TIMEOUT_STEP, math.ceil(slowest * TIMEOUT_HEADROOM / TIMEOUT_STEP) * TIMEOUT_STEP)
    lines = [
        f"memory: {MEMORY_HEADROOM:g} x p99 {format_size(int(p99))} = "
        f"{format_size(int(p99 * MEMORY_HEADROOM))}, rounded up to {format_size(memory)}"
        f" (memory: {memory // (1024 * 1024)}m)",
        f"timeout: {TIMEOUT_HEADROOM:g} x slowest {slowest:.1f} s = "
        f"{slowest * TIMEOUT_HEADROOM:.1f} s, rounded up to {timeout} s (timeout: {timeout})",
    ]
    if usage.memory_kills:
        lines.append(
            f"  {usage.memory_kills} trials were killed at the memory limit: their peak is the"
            " limit, what they would have used is more"
        )
    if usage.timeouts:
        lines.append(
            f"  {usage.timeouts} trials were killed at the timeout: their wall time is the"
            " timeout, what they would have taken is more"
        )
    workers, worker_line = _workers(usage, host, memory)
    lines.append(worker_line)
    return Suggestion(usage.match, memory, timeout, workers, tuple(lines))


def _workers(usage: MatchUsage, host: HostResources, memory: int) -> tuple[int | None, str]:
    parts: list[str] = []
    counts: list[int] = []
    if host.memory is not None:
        by_memory = max(1, int(host.memory * HOST_MEMORY_SHARE // memory))
        counts.append(by_memory)
        parts.append(
            f"memory {format_size(host.memory)} x {HOST_MEMORY_SHARE:g} / {format_size(memory)}"
            f" = {by_memory}"
        )
    if host.cores is not None and usage.cores_per_trial is not None:
        busy = max(MIN_CORES_PER_TRIAL, usage.cores_per_trial)
        by_cores = max(1, int(host.cores // busy))
        counts.append(by_cores)
        parts.append(f"cores {host.cores} / {busy:.2f} busy per trial = {by_cores}")
    if not counts:
        return None, "workers: this host's memory and cores are not known"
    workers = min(counts)
    return workers, f"workers: {'; '.join(parts)}: {workers} (workers: {workers})"
