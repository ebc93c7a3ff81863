"""The store seam: domain operations on the OptHub table.

Item shapes (``ID``, ``Trial``, ``Success#``...) stay inside the
implementations; callers speak in ``TrialRef`` and results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ..model import JSON, Evaluation, Failure, HistoryEntry, Score, Timing, TrialRef


@dataclass(frozen=True)
class Solution:
    """A participant's submission: ``variable`` is what the problem image gets on stdin."""

    variable: JSON


InputT = TypeVar("InputT")


@dataclass(frozen=True)
class JobInput(Generic[InputT]):
    """What a job reads before it runs, in one round trip to the table.

    ``done`` is true when the trial already has the job's result (its flag
    item exists): the job then runs nothing. Otherwise ``value`` is the job's
    input, or None when the table has none (yet).
    """

    done: bool
    value: InputT | None


@dataclass(frozen=True)
class TrialState:
    """What the table says of one earlier trial, for building a history.

    ``entry`` is set when the trial has a Success evaluation and a Success
    score. ``resolved`` is true when nothing more will ever be written for it
    (a Failed evaluation, or a Success evaluation with any score): results are
    immutable once written, so a resolved state can be cached for good.
    """

    trial_no: str
    entry: HistoryEntry | None
    resolved: bool


class Store(Protocol):
    """Reads and writes the table.

    Writes raise ``errors.AlreadyDone`` when the trial already has a result,
    ``errors.ResultTooLarge`` when the item is too large or too deeply nested,
    ``errors.ResultRejected`` when DynamoDB refuses it for another reason, and
    ``errors.TransientError`` for throttling and connection failures.
    """

    def get_solution(self, ref: TrialRef) -> Solution | None:
        """The submitted solution, or None when the table has none."""
        ...

    def is_evaluated(self, ref: TrialRef) -> bool:
        """Whether the trial already has an evaluation (its flag item exists)."""
        ...

    def is_scored(self, ref: TrialRef) -> bool:
        """Whether the trial already has a score (its flag item exists)."""
        ...

    def evaluation_input(self, ref: TrialRef) -> JobInput[Solution]:
        """``is_evaluated`` and ``get_solution`` in one read: what the evaluator needs first."""
        ...

    def score_input(self, ref: TrialRef) -> JobInput[Evaluation]:
        """``is_scored`` and ``get_evaluation`` in one read: what the scorer needs first."""
        ...

    def get_evaluation(self, ref: TrialRef) -> Evaluation | None:
        """The trial's Success evaluation, or None when it has none."""
        ...

    def put_evaluation(
        self, ref: TrialRef, result: Evaluation | Failure, timing: Timing
    ) -> list[str]:
        """Write the evaluation with its flag item in one transaction.

        Returns notes on values that had to be changed to fit DynamoDB.
        """
        ...

    def put_score(self, ref: TrialRef, result: Score | Failure, timing: Timing) -> list[str]:
        """Write the score with its flag item in one transaction; as ``put_evaluation``."""
        ...

    def trial_states(
        self, match_id: str, participant_id: str, after: str | None, before: str
    ) -> list[TrialState]:
        """Every trial strictly between ``after`` and ``before`` that has an evaluation.

        Trial numbers compare as strings of the width ``before`` has. Trials
        with no evaluation item at all are absent. Sorted by trial number.
        """
        ...
