"""Trials that reach the scorer out of order, and the check of what it scored.

Parallel evaluators finish a participant's trials out of order, so their
score messages reach the scorer shuffled. The FIFO scoring test and the FIFO
scoring benchmark store the same kind of evaluations, send their messages in
the same interleaved order and check the scores against the best so far
computed from the trials themselves: one harness, so that the benchmark
measures what the test proves.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from ..matches import ImageSpec, MatchSpec
from ..model import Evaluation, Timing, TrialRef
from ..store.items import SCORES, success_key
from ..store.memory import MemoryStore


class IndicatorCatalogue:
    """A match source whose every match is scored by one indicator image."""

    def __init__(self, *, indicator: str) -> None:
        self.indicator = indicator

    def get(self, match_id: str) -> MatchSpec:
        return MatchSpec(match_id, ImageSpec("unused:1", {}), ImageSpec(self.indicator, {}))


@dataclass(frozen=True)
class ShuffledTrials:
    """Each participant's evaluated trials, in the order their score messages are sent."""

    #: The objective of every trial (the best-so-far indicator keeps the lowest).
    objectives: dict[TrialRef, int]
    #: One list per participant, shuffled within the participant.
    groups: list[list[TrialRef]]

    @property
    def total(self) -> int:
        return len(self.objectives)

    def sends(self) -> Iterator[TrialRef]:
        """The platform's order: groups interleaved, each group's own order shuffled."""
        for position in range(max((len(g) for g in self.groups), default=0)):
            for refs in self.groups:
                if position < len(refs):
                    yield refs[position]

    def wrong_scores(self, store: MemoryStore) -> list[TrialRef]:
        """Trials whose Score is missing or is not the best objective of trials up to it."""
        scores = {(str(i["ID"]), str(i["Trial"])): i.get("Value") for i in store.score_items()}
        wrong: list[TrialRef] = []
        for refs in self.groups:
            best: int | None = None
            for ref in sorted(refs, key=lambda r: r.trial_no):
                best = self.objectives[ref] if best is None else min(best, self.objectives[ref])
                key = success_key(SCORES, ref)
                if scores.get((key["ID"], key["Trial"])) != Decimal(best):
                    wrong.append(ref)
        return wrong


def evaluated_trials(
    store: MemoryStore,
    *,
    match: str,
    participants: int,
    trials: int,
    timing: Timing,
    seed: int,
    highest: int = 1000,
) -> ShuffledTrials:
    """Store every participant's evaluations (objectives 1..``highest``), then shuffle them."""
    shuffle = random.Random(seed)
    objectives: dict[TrialRef, int] = {}
    groups: list[list[TrialRef]] = []
    for p in range(participants):
        refs = [TrialRef(match, f"p-{p}", f"{n:04d}") for n in range(1, trials + 1)]
        for ref in refs:
            objectives[ref] = shuffle.randint(1, highest)
            store.put_evaluation(ref, Evaluation(objective=objectives[ref]), timing)
        shuffle.shuffle(refs)
        groups.append(refs)
    return ShuffledTrials(objectives=objectives, groups=groups)
