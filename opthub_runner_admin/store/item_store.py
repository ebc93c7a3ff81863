"""The ``Store`` operations that read and write the platform's items, written once.

The DynamoDB adapter and the in-memory store differ only in how they get,
write and query raw items: given those three primitives, which keys a trial's
solution, flag and results have, which items a result is written as, and how
the history is read from the items are the same code for both, so that the
contract tests hold one implementation and the two cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..model import Evaluation, Failure, Score, Timing, TrialRef
from .base import Solution, TrialState
from .items import (
    EVALUATIONS,
    SCORES,
    SOLUTIONS,
    Item,
    evaluation_from_item,
    evaluation_item,
    score_item,
    solution_from_item,
    success_key,
    trial_key,
)
from .trial_states import collect_trial_states


class ItemStore(ABC):
    """The item-level half of a ``Store``; a subclass adds the primitives and the job inputs."""

    def get_solution(self, ref: TrialRef) -> Solution | None:
        """The Solution item of ``ref``, or None."""
        item = self._get(trial_key(SOLUTIONS, ref), f"read the solution of {ref} from")
        return solution_from_item(item) if item is not None else None

    def is_evaluated(self, ref: TrialRef) -> bool:
        """Whether the evaluation flag of ``ref`` exists."""
        key = trial_key(EVALUATIONS, ref)
        return self._get(key, f"look for the evaluation of {ref} in") is not None

    def is_scored(self, ref: TrialRef) -> bool:
        """Whether the score flag of ``ref`` exists."""
        key = trial_key(SCORES, ref)
        return self._get(key, f"look for the score of {ref} in") is not None

    def get_evaluation(self, ref: TrialRef) -> Evaluation | None:
        """The Success evaluation of ``ref``, or None."""
        item = self._get(success_key(EVALUATIONS, ref), f"read the evaluation of {ref} from")
        return evaluation_from_item(item) if item is not None else None

    def put_evaluation(
        self, ref: TrialRef, result: Evaluation | Failure, timing: Timing
    ) -> list[str]:
        """Write the Evaluation item with its flag, both or neither; return the notes."""
        item, notes = evaluation_item(ref, result, timing)
        self._write(item, f"the evaluation of {ref}")
        return notes

    def put_score(self, ref: TrialRef, result: Score | Failure, timing: Timing) -> list[str]:
        """Write the Score item with its flag, both or neither; return the notes."""
        item, notes = score_item(ref, result, timing)
        self._write(item, f"the score of {ref}")
        return notes

    def trial_states(
        self, match_id: str, participant_id: str, after: str | None, before: str
    ) -> list[TrialState]:
        """Every trial strictly between ``after`` and ``before`` that has an evaluation."""
        return collect_trial_states(self._query, match_id, participant_id, after, before)

    # --- the primitives a store provides ----------------------------------------

    @abstractmethod
    def _get(self, key: Item, action: str) -> Item | None:
        """The item with ``key`` (strongly consistent), or None; counted in ``items_read``.

        ``action`` is what the read was for, in the words of an error that
        completes "cannot <action> table ...".
        """

    @abstractmethod
    def _write(self, item: Item, what: str) -> None:
        """Write ``item`` and its flag item, both or neither.

        Raises ``errors.AlreadyDone`` when the flag exists; ``what`` names the
        result ("the evaluation of <trial>") in the errors.
        """

    @abstractmethod
    def _query(self, partition: str, low: str, high: str) -> list[Item]:
        """Every item of ``partition`` with ``low <= Trial <= high``; counted in ``items_read``."""
