"""What one container used, as the observers hear it: the figures and the limits they met."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..executor import Execution, RunSpec, TrialUsage

_MIB = 1024 * 1024


@dataclass(frozen=True)
class ContainerUsage:
    """The executor's figures of one run, with the limits it ran under and how it ended."""

    usage: TrialUsage
    #: Bytes (None: the container had no memory limit).
    memory_limit: int | None
    memory_killed: bool
    timed_out: bool
    #: Seconds the container was allowed.
    timeout: float

    @classmethod
    def of(cls, spec: RunSpec, execution: Execution) -> ContainerUsage:
        return cls(
            usage=execution.usage,
            memory_limit=execution.memory_limit,
            memory_killed=execution.oom_killed,
            timed_out=execution.timed_out,
            timeout=spec.timeout,
        )


class PerThread:
    """The last ``ContainerUsage`` of each job thread, until its job's end takes it.

    The worker reports a job's start, its container and its end from the
    job's own thread (``JobEvents``): an observer that needs the message (the
    match) beside the figures keeps them here in between.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, ContainerUsage] = {}

    def put(self, used: ContainerUsage) -> None:
        with self._lock:
            self._latest[threading.get_ident()] = used

    def take(self) -> ContainerUsage | None:
        with self._lock:
            return self._latest.pop(threading.get_ident(), None)


def mib(size: float) -> str:
    """``64.0 MiB`` for 64 MiB."""
    return f"{size / _MIB:.1f} MiB"


def usage_words(usage: TrialUsage) -> str:
    """The figures as the job's log line gives them."""
    parts = []
    if usage.peak_memory is not None:
        parts.append(f"peak {mib(usage.peak_memory)}")
    if usage.cpu_seconds is not None:
        parts.append(f"CPU {usage.cpu_seconds:.2f} s")
    parts.append(f"wall {usage.wall_seconds:.2f} s")
    text = ", ".join(parts)
    if usage.from_start:
        text += " (from the container's start: it was started ahead of its job)"
    if usage.not_measured:
        text += f"; {usage.not_measured}"
    return text


def usage_fields(usage: TrialUsage) -> dict[str, object]:
    """The figures as the JSON log line's fields."""
    fields: dict[str, object] = {"wall_s": round(usage.wall_seconds, 3)}
    if usage.peak_memory is not None:
        fields["peak_memory_bytes"] = usage.peak_memory
    if usage.cpu_seconds is not None:
        fields["cpu_s"] = round(usage.cpu_seconds, 3)
    if usage.from_start:
        fields["usage_from_start"] = True
    if usage.not_measured:
        fields["usage_note"] = usage.not_measured
    return fields
