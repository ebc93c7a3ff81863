"""Values that travel between the seams: what a job is about and what it produced.

These are plain data with no knowledge of DynamoDB item shapes or SQS bodies,
so that the worker, the jobs and the in-memory test doubles can share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: A value as JSON can carry it (numbers as int or float, never Decimal).
JSON = None | bool | int | float | str | list[Any] | dict[str, Any]


#: How the table, and at times the platform's bodies, write a match: ``Match#<uuid>``.
MATCH_PREFIX = "Match#"


def table_match_id(match_id: str) -> str:
    """A bare match UUID as the table writes it (``Match#<uuid>``)."""
    return f"{MATCH_PREFIX}{match_id}"


def bare_match_id(text: str) -> str:
    """A match UUID without the table's prefix, whichever way it was written."""
    return text.removeprefix(MATCH_PREFIX)


@dataclass(frozen=True)
class TrialRef:
    """One trial of one participant in one match.

    ``match_id`` is the bare UUID (the table writes it ``Match#<uuid>``) and
    ``trial_no`` is kept exactly as the platform sent it, zero-filled width
    included, because the table's sort keys compare it as a string.
    """

    match_id: str
    participant_id: str
    trial_no: str

    def __str__(self) -> str:
        return f"match {self.match_id} participant {self.participant_id} trial {self.trial_no}"


@dataclass(frozen=True)
class Evaluation:
    """A successful evaluation as the problem image reported it."""

    objective: JSON
    constraint: JSON = None
    info: dict[str, Any] = field(default_factory=dict)
    feasible: bool | None = None

    def as_json(self) -> dict[str, JSON]:
        """The shape the indicator image receives on its first stdin line."""
        return {
            "objective": self.objective,
            "constraint": self.constraint,
            "info": self.info,
            "feasible": self.feasible,
        }


@dataclass(frozen=True)
class Score:
    """A successful score."""

    value: int | float


@dataclass(frozen=True)
class Failure:
    """A trial that failed for a reason attributable to the submission or the image.

    ``message`` is shown to the participant and must not leak the
    administrator's details (environment, stderr); ``admin_message`` carries
    those details.
    """

    message: str
    admin_message: str


@dataclass(frozen=True)
class Timing:
    """When a container run started and finished (UTC)."""

    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One earlier trial as the indicator image receives it in the history line."""

    trial_no: str
    evaluation: Evaluation
    score: int | float

    def as_json(self) -> dict[str, JSON]:
        return {"trial_no": self.trial_no, **self.evaluation.as_json(), "score": self.score}


@dataclass(frozen=True)
class RunnerScope:
    """Which competition a runner serves: the SQS queue it receives from, the table it writes.

    One account may run several competitions on one host. ``opthub-runner
    stop`` and the start-up reaper must then act on the runners and containers
    of one competition only: the scope is written in each runner's pid file and
    on each container it starts (``reaping.scope_labels``).
    """

    queue_url: str
    table_name: str

    def describe(self) -> str:
        return f"queue {self.queue_url}, table {self.table_name}"
