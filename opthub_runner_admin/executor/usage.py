"""What one container run used: its peak memory, its CPU time, its wall time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrialUsage:
    """The figures of one run, as the executor measured them.

    ``wall_seconds`` runs from the moment the input is written to the exit
    (or the kill at the timeout). ``peak_memory`` (bytes) and
    ``cpu_seconds`` (user + system) come from the container's own cgroup;
    None when they could not be measured, and ``not_measured`` then says why.
    ``from_start`` says that they count from the container's start rather
    than from its input: a container started ahead of its job (``prestart``)
    waited for that job, idle, with its process already loaded.
    """

    wall_seconds: float
    peak_memory: int | None = None
    cpu_seconds: float | None = None
    not_measured: str = ""
    from_start: bool = False

    @property
    def measured(self) -> bool:
        """Both the peak memory and the CPU time are known."""
        return self.peak_memory is not None and self.cpu_seconds is not None


#: What a run reports when the executor did not measure it at all.
NOT_MEASURED = TrialUsage(wall_seconds=0.0, not_measured="not measured: no figures were taken")
