"""An in-memory indicator and match source for scoring tests: best-so-far of the history."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

from opthub_runner_admin.executor import Execution, RunSpec
from opthub_runner_admin.matches import ImageSpec, MatchSpec

START = datetime(2026, 12, 4, tzinfo=timezone.utc)


def objective(participant: int, trial: int) -> int:
    """Objectives that make best-so-far differ with the history (a wrong history shows)."""
    return (participant * 7 + trial * 5) % 11


def expected_score(participant: int, trial: int) -> int:
    return min(objective(participant, t) for t in range(1, trial + 1))


class BestSoFar:
    """The in-memory indicator: the smallest objective of the history and the current trial."""

    def run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        current, history = (json.loads(line) for line in spec.stdin_lines)
        best = min([current["objective"], *(entry["objective"] for entry in history)])
        return Execution(
            exit_code=0,
            stdout=json.dumps({"score": best}),
            stderr="",
            timed_out=False,
            started_at=START,
            finished_at=START,
        )


class OneMatch:
    def get(self, match_id: str) -> MatchSpec:
        return MatchSpec(match_id, ImageSpec("problem:1", {}), ImageSpec("indicator:1", {}))
