"""Which earlier trials are settled, from the table's items: the scorer's history logic.

Written once over a "query" callable, so that the DynamoDB adapter and the
in-memory store answer ``Store.trial_states`` with the same code.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import HistoryEntry
from .base import TrialState
from .items import (
    EVALUATIONS,
    FAILED,
    SCORES,
    SUCCESS,
    Item,
    evaluation_from_item,
    partition_key,
    score_from_item,
)

#: Reads the items of one partition whose sort key lies between two bounds (inclusive).
QueryFn = Callable[[str, str, str], list[Item]]


def trial_bounds(after: str | None, before: str) -> tuple[str, str] | None:
    """The first and last trial number strictly between ``after`` and ``before``.

    Both are written with the width of ``before`` so that they compare as
    strings with the table's sort keys; None when no trial lies between.
    Raises ValueError for a trial number that is not decimal digits, which
    the contract rules out and a string range could not honour.
    """
    for trial_no in (after, before):
        if trial_no is not None and not _is_trial_no(trial_no):
            raise ValueError(f"trial number {trial_no!r} is not a zero-filled decimal")
    width = len(before)
    low = int(after) + 1 if after is not None else 0
    high = int(before) - 1
    if high < low:
        return None
    return str(low).zfill(width), str(high).zfill(width)


def _is_trial_no(text: str) -> bool:
    return text.isascii() and text.isdigit()


def collect_trial_states(
    query: QueryFn, match_id: str, participant_id: str, after: str | None, before: str
) -> list[TrialState]:
    """``Store.trial_states`` over any ``query``: the logic both stores share.

    Reads only the sort-key ranges of the trials between ``after`` and
    ``before`` (never the whole history), which keeps the scorer incremental.
    Score items are read only over the span of trials with a Success evaluation.
    """
    bounds = trial_bounds(after, before)
    if bounds is None:
        return []
    width = len(before)
    evaluations = partition_key(EVALUATIONS, match_id, participant_id)
    succeeded = {
        trial: evaluation_from_item(item)
        for trial, item in _by_trial(query, evaluations, SUCCESS, bounds, width).items()
    }
    failed = set(_by_trial(query, evaluations, FAILED, bounds, width))
    scores: dict[str, Item] = {}
    scored: set[str] = set()
    if succeeded:
        span = (min(succeeded), max(succeeded))
        score_partition = partition_key(SCORES, match_id, participant_id)
        scores = _by_trial(query, score_partition, SUCCESS, span, width)
        scored = set(scores) | set(_by_trial(query, score_partition, FAILED, span, width))
    states = []
    for trial in sorted(set(succeeded) | failed):
        evaluation = succeeded.get(trial)
        if evaluation is None:
            states.append(TrialState(trial, None, True))
        elif trial in scores:
            entry = HistoryEntry(trial, evaluation, score_from_item(scores[trial]))
            states.append(TrialState(trial, entry, True))
        else:
            states.append(TrialState(trial, None, trial in scored))
    return states


def _by_trial(
    query: QueryFn, partition: str, status: str, bounds: tuple[str, str], width: int
) -> dict[str, Item]:
    """Items ``<status>#<trial>`` of ``partition`` within ``bounds``, keyed by trial number.

    Trial numbers of another width (which a string range could let in) are dropped.
    """
    prefix = f"{status}#"
    found: dict[str, Item] = {}
    for item in query(partition, prefix + bounds[0], prefix + bounds[1]):
        trial = str(item.get("Trial", ""))[len(prefix) :]
        if len(trial) == width and _is_trial_no(trial):
            found[trial] = item
    return found
