"""The store seam in memory, for tests and the demo.

It keeps raw items of exactly the shapes ``DynamoStore`` writes and answers
the Store's reads, writes and ``trial_states`` with the same code
(``store.item_store``) over an in-memory get, write and "query", so the
contract tests can hold both to one standard. It needs no AWS library.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any

from .. import errors
from ..model import Evaluation, TrialRef
from .base import JobInput, Solution
from .item_store import ItemStore
from .items import Item, flag_item, solution_item

#: A table key: (ID, Trial).
Key = tuple[str, str]


def _key(item: Mapping[str, Any]) -> Key:
    return str(item["ID"]), str(item["Trial"])


class MemoryStore(ItemStore):
    """A thread-safe in-process ``Store`` holding DynamoDB-shaped items.

    ``items_read`` counts items returned by reads, as ``DynamoStore`` does, so
    that benchmarks of the incremental scorer can run on either.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, Item] = {}
        self.items_read = 0

    # --- the Store protocol, beyond what ItemStore shares -------------------

    def evaluation_input(self, ref: TrialRef) -> JobInput[Solution]:
        """Whether ``ref`` is evaluated, and its solution (one read, as ``DynamoStore``'s)."""
        return JobInput(self.is_evaluated(ref), self.get_solution(ref))

    def score_input(self, ref: TrialRef) -> JobInput[Evaluation]:
        """Whether ``ref`` is scored, and its Success evaluation."""
        return JobInput(self.is_scored(ref), self.get_evaluation(ref))

    # --- helpers for tests and the demo -------------------------------------

    def put_solution(self, ref: TrialRef, variable: Any, *, user_id: str = "user") -> None:
        """Store a Solution item as the platform writes it."""
        self.put_item(solution_item(ref, variable, user_id=user_id))

    def put_item(self, item: Mapping[str, Any]) -> None:
        """Store a raw item as it is, replacing any with its key (to seed odd table states)."""
        with self._lock:
            self._items[_key(item)] = copy.deepcopy(dict(item))

    def item(self, item_id: str, trial: str) -> Item | None:
        """A copy of the raw item with this key, or None."""
        with self._lock:
            found = self._items.get((item_id, trial))
            return copy.deepcopy(found) if found is not None else None

    def items(self) -> list[Item]:
        """Copies of every raw item, sorted by key."""
        with self._lock:
            return [copy.deepcopy(self._items[key]) for key in sorted(self._items)]

    def evaluation_items(self) -> list[Item]:
        """Every Evaluation result item (flags excluded), sorted by key."""
        return [i for i in self.items() if i.get("ResourceType") == "Evaluation"]

    def score_items(self) -> list[Item]:
        """Every Score result item (flags excluded), sorted by key."""
        return [i for i in self.items() if i.get("ResourceType") == "Score"]

    # --- primitives ---------------------------------------------------------

    def _get(self, key: Item, action: str) -> Item | None:
        found = self.item(str(key["ID"]), str(key["Trial"]))
        if found is not None:
            with self._lock:
                self.items_read += 1
        return found

    def _write(self, item: Item, what: str) -> None:
        """Both items or neither, as DynamoDB's transaction with the flag's condition."""
        flag = flag_item(item)
        with self._lock:
            if _key(flag) in self._items:
                raise errors.AlreadyDone(f"{what} was not written: the trial already has a result")
            self._items[_key(item)] = copy.deepcopy(item)
            self._items[_key(flag)] = flag

    def _query(self, partition: str, low: str, high: str) -> list[Item]:
        with self._lock:
            keys = sorted(
                key for key in self._items if key[0] == partition and low <= key[1] <= high
            )
            found = [copy.deepcopy(self._items[key]) for key in keys]
            self.items_read += len(found)
        return found
