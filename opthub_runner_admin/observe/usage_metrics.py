"""Prometheus metrics of what each trial used, per mode and match, in the runner's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from .trial_observer import TrialUsageObserver
from .usage import ContainerUsage

_MIB = 1024 * 1024
#: Peak memory: 16 MiB to 64 GiB, doubling.
MEMORY_BUCKETS = tuple(float(16 * _MIB * 2**n) for n in range(13))
#: CPU and wall seconds: from a trivial run's hundredths to the 12-hour cap.
SECONDS_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200,
)  # fmt: skip


class UsageMetrics(TrialUsageObserver):
    """A ``JobEvents`` observer: each trial's figures into ``registry``, labelled mode and match."""

    def __init__(self, *, mode: str, registry: CollectorRegistry) -> None:
        super().__init__()
        self._mode = mode
        labels = ["mode", "match"]
        self._memory = Histogram(
            "opthub_runner_trial_peak_memory_bytes",
            "Peak memory of a trial's container (its cgroup's own peak).",
            labels,
            buckets=MEMORY_BUCKETS,
            registry=registry,
        )
        self._cpu = Histogram(
            "opthub_runner_trial_cpu_seconds",
            "CPU time (user + system) of a trial's container.",
            labels,
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self._wall = Histogram(
            "opthub_runner_trial_wall_seconds",
            "Seconds from a trial's input to its container's exit (or kill).",
            labels,
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self._kills = Counter(
            "opthub_runner_trial_memory_kills",
            "Trials whose container the kernel killed at its memory limit.",
            labels,
            registry=registry,
        )
        self._timeouts = Counter(
            "opthub_runner_trial_timeouts",
            "Trials whose container was killed at the timeout.",
            labels,
            registry=registry,
        )

    def trial_used(self, match: str, used: ContainerUsage) -> None:
        labels = {"mode": self._mode, "match": match}
        usage = used.usage
        if usage.peak_memory is not None:
            self._memory.labels(**labels).observe(usage.peak_memory)
        if usage.cpu_seconds is not None:
            self._cpu.labels(**labels).observe(usage.cpu_seconds)
        self._wall.labels(**labels).observe(usage.wall_seconds)
        # Touched even at zero, so that a match's counters exist from its first trial.
        self._kills.labels(**labels).inc(1 if used.memory_killed else 0)
        self._timeouts.labels(**labels).inc(1 if used.timed_out else 0)
