"""How many table items the scorer reads to score trials 1..N of one participant.

The scorer's history must be read incrementally: the items read to score N
trials should grow linearly in N, not quadratically. This benchmark scores
trials 1..N in order through the real ``HistoryBuilder`` and store, counting
``items_read`` (DynamoDB's ScannedCount plus GetItem hits), once with the
resolved-prefix cache and once without (every trial rereads its history).

Run (from the repository root, after scripts/setup.sh):

    .venv/bin/python -m benchmarks.history_reads            # DynamoDB on a moto server
    .venv/bin/python -m benchmarks.history_reads --memory   # the in-memory store
    .venv/bin/python -m benchmarks.history_reads --sizes 250 500 1000

Counts are exact and do not depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from opthub_runner_admin.errors import AlreadyDone
from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache
from opthub_runner_admin.history.cache import Prefix
from opthub_runner_admin.model import Evaluation, Score, Timing, TrialRef
from opthub_runner_admin.store import Store
from opthub_runner_admin.store.memory import MemoryStore

TIMING = Timing(
    datetime(2026, 11, 25, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc)
)


class NoCache:
    """A cache that forgets everything: the non-incremental baseline."""

    def get(self, key: tuple[str, str]) -> Prefix | None:
        return None

    def put(self, key: tuple[str, str], prefix: Prefix) -> None:
        return None


def count_reads(store: Store, trials: int, *, incremental: bool = True) -> int:
    """Items read while scoring trials 1..``trials`` in order, as the scorer does."""
    match = str(uuid.uuid4())
    builder = HistoryBuilder(store, MemoryHistoryCache() if incremental else NoCache())
    start = getattr(store, "items_read", 0)
    for n in range(1, trials + 1):
        ref = TrialRef(match, "p-bench", f"{n:04d}")
        # A write retried after a lost response meets its own first attempt (AlreadyDone),
        # as a runner's would: the trial has its result either way.
        with contextlib.suppress(AlreadyDone):
            store.put_evaluation(ref, Evaluation(objective=float(n)), TIMING)
        # What ScoreJob reads: its own flag, its evaluation, then the history.
        store.is_scored(ref)
        store.get_evaluation(ref)
        history = builder.collect(ref)
        assert len(history.entries) == n - 1 and not history.missing
        with contextlib.suppress(AlreadyDone):
            store.put_score(ref, Score(float(n)), TIMING)
    return int(getattr(store, "items_read", 0)) - int(start)


@contextlib.contextmanager
def dynamo_store() -> Iterator[Store]:
    from opthub_runner_admin.platform_side.contract import create_table
    from opthub_runner_admin.platform_side.emulators import MotoServer
    from opthub_runner_admin.store.dynamodb import DynamoStore

    with MotoServer() as server:
        clients = server.clients()
        create_table(clients.dynamodb, "bench")
        yield DynamoStore(clients.dynamodb, "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", action="store_true", help="use the in-memory store")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=500,
        help="largest N for the quadratic baseline (it is slow on moto)",
    )
    args = parser.parse_args()
    opener: Callable[[], contextlib.AbstractContextManager[Store]] = (
        (lambda: contextlib.nullcontext(MemoryStore())) if args.memory else dynamo_store
    )
    print(f"store: {'memory' if args.memory else 'DynamoDB on a moto server'}")
    columns = ("N", "incremental", "per trial", "no cache", "per trial", "s")
    widths = (6, 12, 10, 10, 10, 6)
    print(
        " ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True)),
        flush=True,
    )
    with opener() as store:
        for n in args.sizes:
            began = time.monotonic()
            reads = count_reads(store, n)
            baseline = count_reads(store, n, incremental=False) if n <= args.baseline_max else None
            seconds = time.monotonic() - began
            base = (
                f"{baseline:>10} {baseline / n:>10.1f}"
                if baseline is not None
                else f"{'-':>10} {'-':>10}"
            )
            print(f"{n:>6} {reads:>12} {reads / n:>10.2f} {base} {seconds:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
