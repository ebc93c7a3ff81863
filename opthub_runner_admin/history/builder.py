"""Build the history line of the indicator's stdin.

The history is every earlier trial with a Success evaluation and a Success
score, in trial order. It must never be silently incomplete: an earlier trial
whose results are not all written yet (its evaluation or its score is still
being computed somewhere) is reported as missing, and the scorer waits for it.

Trial numbers are the n-th submission of a participant, zero-filled: trials
1..k-1 exist before trial k, which is how a trial with no evaluation at all is
noticed. Numbers are compared as integers and written back at the width the
platform uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import HistoryEntry, TrialRef
from ..store import Store, TrialState
from .cache import HistoryCache, Prefix


@dataclass(frozen=True)
class History:
    entries: list[HistoryEntry]
    #: Earlier trials whose results are not all in the table yet.
    missing: list[str]
    #: Those of ``missing`` with no evaluation in the table yet: their score messages
    #: cannot be in the scorer's queue yet either.
    unevaluated: list[str] = field(default_factory=list)


class HistoryBuilder:
    """Reads from the table only the trials after the cached resolved prefix."""

    def __init__(self, store: Store, cache: HistoryCache) -> None:
        self._store = store
        self._cache = cache
        # Trials the scorer stopped waiting for: later trials of the same
        # participant should not each wait for them again.
        self._given_up: dict[tuple[str, str], set[str]] = {}

    def give_up(self, ref: TrialRef, trials: list[str]) -> None:
        """Stop waiting for ``trials`` (they may still join later histories if they resolve)."""
        self._given_up.setdefault((ref.match_id, ref.participant_id), set()).update(trials)

    def collect(self, ref: TrialRef) -> History:
        if not ref.trial_no.isdigit():
            return self._uncached(ref)
        key = (ref.match_id, ref.participant_id)
        current = int(ref.trial_no)
        prefix = self._cache.get(key)
        if prefix is not None and _same_width(prefix.watermark, ref.trial_no):
            if int(prefix.watermark) >= current - 1:
                # Everything before this trial is resolved and cached (a redelivery, say).
                return History([e for e in prefix.entries if int(e.trial_no) < current], [])
        else:
            prefix = None
        after = prefix.watermark if prefix else None
        states = self._store.trial_states(ref.match_id, ref.participant_id, after, ref.trial_no)
        start = int(after) + 1 if after else 1
        entries, missing, unevaluated, watermark = _merge(states, start, current, ref.trial_no)
        known = list(prefix.entries) if prefix else []
        if watermark is not None:
            resolved = [e for e in entries if int(e.trial_no) <= int(watermark)]
            self._cache.put(key, Prefix(watermark, tuple(known + resolved)))
        given_up = self._given_up.get(key, set())
        return History(
            known + entries,
            [t for t in missing if t not in given_up],
            [t for t in unevaluated if t not in given_up],
        )

    def _uncached(self, ref: TrialRef) -> History:
        states = self._store.trial_states(ref.match_id, ref.participant_id, None, ref.trial_no)
        entries = [s.entry for s in states if s.entry is not None]
        missing = [s.trial_no for s in states if not s.resolved]
        return History(entries, missing)


def _merge(
    states: list[TrialState], start: int, current: int, like: str
) -> tuple[list[HistoryEntry], list[str], list[str], str | None]:
    """Entries, missing trials, those of them with no evaluation, and the new watermark.

    The watermark is None when it did not move.
    """
    by_number = {int(s.trial_no): s for s in states if s.trial_no.isdigit()}
    entries: list[HistoryEntry] = []
    missing: list[str] = []
    unevaluated: list[str] = []
    watermark: str | None = None
    for number in range(start, current):
        state = by_number.get(number)
        if state is None or not state.resolved:
            missing.append(str(number).zfill(len(like)))
            if state is None:
                unevaluated.append(missing[-1])
        elif not missing:
            watermark = state.trial_no
        if state is not None and state.entry is not None:
            entries.append(state.entry)
    return entries, missing, unevaluated, watermark


def _same_width(a: str, b: str) -> bool:
    return len(a) == len(b)
