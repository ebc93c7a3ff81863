"""What each match's trials used: p50 / p95 / p99 / max, the memory kills and the timeouts.

Kept in memory by a running runner (the last ``KEPT`` trials of each match),
shown on its status page and served as JSON (``/usage.json``) for
``opthub-runner status``. Figures count from the container's start when it
was started ahead of its job (``TrialUsage.from_start``).
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..host.resources import HostResources
from .trial_observer import TrialUsageObserver
from .usage import ContainerUsage

#: Trials kept per match for the percentiles (the newest; the counts cover them all).
KEPT = 2000


@dataclass(frozen=True)
class Spread:
    """Nearest-rank percentiles of one figure over a match's trials."""

    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        ordered = sorted(values)
        return cls(
            p50=_rank(ordered, 0.50),
            p95=_rank(ordered, 0.95),
            p99=_rank(ordered, 0.99),
            max=ordered[-1],
        )


def _rank(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with ``share`` of them at or below it."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class MatchUsage:
    """One match's trials as this runner ran them."""

    match: str
    #: Trials that ran a container (measured or not).
    trials: int
    #: Of those, with a peak memory and a CPU time.
    measured: int
    memory_kills: int
    timeouts: int
    #: Bytes; None when the last trial's container had no limit.
    memory_limit: int | None
    #: Seconds the last trial was allowed.
    timeout: float
    peak_memory: Spread | None
    cpu_seconds: Spread | None
    wall_seconds: Spread | None
    #: Average cores busy while a trial runs: total CPU time over total wall time.
    cores_per_trial: float | None
    #: Why the last unmeasured trial was not measured ("" if all were).
    not_measured: str = ""
    #: Some figures count from the container's start (it was started ahead of its job).
    from_start: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchUsage:
        spreads: dict[str, Any] = {
            key: Spread(**data[key]) if data.get(key) else None
            for key in ("peak_memory", "cpu_seconds", "wall_seconds")
        }
        plain = {k: v for k, v in data.items() if k not in spreads and k in _FIELDS}
        return cls(**{**plain, **spreads})


_FIELDS = set(MatchUsage.__dataclass_fields__)


@dataclass
class _Tally:
    memory: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT))
    cpu: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT))
    wall: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT))
    trials: int = 0
    measured: int = 0
    kills: int = 0
    timeouts: int = 0
    memory_limit: int | None = None
    timeout: float = 0.0
    not_measured: str = ""
    from_start: bool = False
    cpu_total: float = 0.0
    wall_total: float = 0.0


class MatchUsageBoard(TrialUsageObserver):
    """A ``JobEvents`` observer that keeps each match's figures; thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._matches: dict[str, _Tally] = {}

    def trial_used(self, match: str, used: ContainerUsage) -> None:
        self.record(match, used)

    def record(self, match: str, used: ContainerUsage) -> None:
        usage = used.usage
        with self._lock:
            tally = self._matches.setdefault(match, _Tally())
            tally.trials += 1
            tally.kills += used.memory_killed
            tally.timeouts += used.timed_out
            tally.memory_limit = used.memory_limit
            tally.timeout = used.timeout
            tally.from_start = tally.from_start or usage.from_start
            tally.wall.append(usage.wall_seconds)
            if usage.peak_memory is not None:
                tally.memory.append(float(usage.peak_memory))
            if usage.cpu_seconds is not None:
                tally.cpu.append(usage.cpu_seconds)
                tally.cpu_total += usage.cpu_seconds
                tally.wall_total += usage.wall_seconds
            if usage.measured:
                tally.measured += 1
            elif usage.not_measured:
                tally.not_measured = usage.not_measured

    def snapshot(self) -> list[MatchUsage]:
        """Every match seen, by match id."""
        with self._lock:
            return [_usage_of(match, t) for match, t in sorted(self._matches.items())]


def _usage_of(match: str, tally: _Tally) -> MatchUsage:
    return MatchUsage(
        match=match,
        trials=tally.trials,
        measured=tally.measured,
        memory_kills=tally.kills,
        timeouts=tally.timeouts,
        memory_limit=tally.memory_limit,
        timeout=tally.timeout,
        peak_memory=Spread.of(tally.memory),
        cpu_seconds=Spread.of(tally.cpu),
        wall_seconds=Spread.of(tally.wall),
        cores_per_trial=tally.cpu_total / tally.wall_total if tally.wall_total > 0 else None,
        not_measured=tally.not_measured,
        from_start=tally.from_start,
    )


@dataclass(frozen=True)
class UsageDocument:
    """What a running runner's ``/usage.json`` says: its mode, its host, its matches."""

    mode: str
    host: HostResources
    matches: list[MatchUsage]


def usage_document(mode: str, host: HostResources, matches: Sequence[MatchUsage]) -> bytes:
    """The JSON a running runner serves (``read_usage_document`` reads it back)."""
    return json.dumps(
        {
            "mode": mode,
            "host": {"memory": host.memory, "cores": host.cores},
            "matches": [usage.as_json() for usage in matches],
        }
    ).encode()


def read_usage_document(body: bytes) -> UsageDocument:
    """``usage_document``'s JSON read back; ValueError (KeyError, TypeError) if it is not that."""
    data = json.loads(body)
    host = data["host"]
    return UsageDocument(
        mode=str(data["mode"]),
        host=HostResources(memory=host.get("memory"), cores=host.get("cores")),
        matches=[MatchUsage.from_json(match) for match in data["matches"]],
    )
