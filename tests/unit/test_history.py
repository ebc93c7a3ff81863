"""The scorer's history: complete, ordered, incremental, and never stale."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache, SqliteHistoryCache
from opthub_runner_admin.history.cache import Prefix
from opthub_runner_admin.model import Evaluation, Failure, Score, Timing, TrialRef
from opthub_runner_admin.store.base import TrialState
from opthub_runner_admin.store.memory import MemoryStore

MATCH = "3b7c0b1e-0000-4000-8000-000000000001"
NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
TIMING = Timing(NOW, NOW)


def ref(n: int, participant: str = "p-1", width: int = 4) -> TrialRef:
    return TrialRef(MATCH, participant, str(n).zfill(width))


class RecordingStore(MemoryStore):
    """A MemoryStore that records which ranges the builder asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[str | None, str]] = []

    def trial_states(
        self, match_id: str, participant_id: str, after: str | None, before: str
    ) -> list[TrialState]:
        self.ranges.append((after, before))
        return super().trial_states(match_id, participant_id, after, before)


def scored(
    store: MemoryStore, n: int, objective: float, score: float, participant: str = "p-1"
) -> None:
    store.put_evaluation(ref(n, participant), Evaluation(objective=objective), TIMING)
    store.put_score(ref(n, participant), Score(score), TIMING)


def test_history_is_every_earlier_success_in_trial_order() -> None:
    store = RecordingStore()
    for n in (3, 1, 2):
        scored(store, n, objective=float(n), score=n / 10)
    history = HistoryBuilder(store, MemoryHistoryCache()).collect(ref(4))
    assert history.missing == []
    assert [e.as_json() for e in history.entries] == [
        {
            "trial_no": "0001",
            "objective": 1,
            "constraint": None,
            "info": {},
            "feasible": None,
            "score": 0.1,
        },
        {
            "trial_no": "0002",
            "objective": 2,
            "constraint": None,
            "info": {},
            "feasible": None,
            "score": 0.2,
        },
        {
            "trial_no": "0003",
            "objective": 3,
            "constraint": None,
            "info": {},
            "feasible": None,
            "score": 0.3,
        },
    ]


def test_failed_evaluations_and_failed_scores_are_left_out() -> None:
    store = RecordingStore()
    scored(store, 1, 1.0, 0.5)
    store.put_evaluation(ref(2), Failure("bad", "details"), TIMING)
    store.put_evaluation(ref(3), Evaluation(objective=3.0), TIMING)
    store.put_score(ref(3), Failure("bad", "details"), TIMING)
    scored(store, 4, 4.0, 0.25)
    scored(store, 5, 5.0, 0.125)
    history = HistoryBuilder(store, MemoryHistoryCache()).collect(ref(5))
    assert [e.trial_no for e in history.entries] == ["0001", "0004"]
    assert history.missing == []


def test_pending_scores_and_missing_evaluations_are_reported() -> None:
    store = RecordingStore()
    scored(store, 1, 1.0, 0.5)
    store.put_evaluation(ref(2), Evaluation(objective=2.0), TIMING)  # score in flight
    # Trial 3 has no evaluation at all yet.
    scored(store, 4, 4.0, 0.25)
    history = HistoryBuilder(store, MemoryHistoryCache()).collect(ref(5))
    assert history.missing == ["0002", "0003"]
    assert [e.trial_no for e in history.entries] == ["0001", "0004"]


def test_only_trials_after_the_resolved_prefix_are_read_again() -> None:
    store = RecordingStore()
    builder = HistoryBuilder(store, MemoryHistoryCache())
    for n in range(1, 6):
        assert [e.trial_no for e in builder.collect(ref(n)).entries] == [
            str(k).zfill(4) for k in range(1, n)
        ]
        scored(store, n, float(n), 1.0 / n)
    assert store.ranges == [
        (None, "0001"),
        (None, "0002"),
        ("0001", "0003"),
        ("0002", "0004"),
        ("0003", "0005"),
    ]


def test_the_watermark_stops_below_an_unresolved_trial() -> None:
    store = RecordingStore()
    builder = HistoryBuilder(store, MemoryHistoryCache())
    scored(store, 1, 1.0, 1.0)
    store.put_evaluation(ref(2), Evaluation(objective=2.0), TIMING)
    scored(store, 3, 3.0, 0.5)
    assert builder.collect(ref(4)).missing == ["0002"]
    store.put_score(ref(2), Score(0.75), TIMING)  # the in-flight score lands
    history = builder.collect(ref(4))
    assert history.missing == []
    assert [e.trial_no for e in history.entries] == ["0001", "0002", "0003"]
    assert store.ranges[-1] == ("0001", "0004")


def test_a_redelivered_earlier_trial_gets_only_its_own_earlier_history() -> None:
    store = RecordingStore()
    builder = HistoryBuilder(store, MemoryHistoryCache())
    for n in range(1, 5):
        scored(store, n, float(n), 1.0)
    builder.collect(ref(5))
    reads = len(store.ranges)
    history = builder.collect(ref(3))
    assert [e.trial_no for e in history.entries] == ["0001", "0002"]
    assert len(store.ranges) == reads  # served from the cache


def test_participants_do_not_share_history() -> None:
    store = RecordingStore()
    scored(store, 1, 1.0, 1.0, participant="alice")
    scored(store, 1, 9.0, 9.0, participant="bob")
    builder = HistoryBuilder(store, MemoryHistoryCache())
    alice = builder.collect(ref(2, participant="alice"))
    assert [e.evaluation.objective for e in alice.entries] == [1]


def test_given_up_trials_are_not_waited_for_again() -> None:
    store = RecordingStore()
    builder = HistoryBuilder(store, MemoryHistoryCache())
    scored(store, 2, 2.0, 1.0)
    assert builder.collect(ref(3)).missing == ["0001"]
    builder.give_up(ref(3), ["0001"])
    scored(store, 3, 3.0, 1.0)
    history = builder.collect(ref(4))
    assert history.missing == []
    assert [e.trial_no for e in history.entries] == ["0002", "0003"]


def test_disk_cache_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = RecordingStore()
    for n in range(1, 4):
        scored(store, n, float(n), 1.0 / n)
    first = HistoryBuilder(store, SqliteHistoryCache(path, scope="t"))
    before = first.collect(ref(4)).entries
    store.ranges.clear()
    restarted = HistoryBuilder(store, SqliteHistoryCache(path, scope="t"))
    after = restarted.collect(ref(4)).entries
    assert after == before
    assert store.ranges == []  # nothing reread from the table
    other_table = HistoryBuilder(store, SqliteHistoryCache(path, scope="other"))
    other_table.collect(ref(4))
    assert store.ranges == [(None, "0004")]


def test_a_damaged_cache_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    store = RecordingStore()
    scored(store, 1, 1.0, 1.0)
    history = HistoryBuilder(store, SqliteHistoryCache(path, scope="t")).collect(ref(2))
    assert [e.trial_no for e in history.entries] == ["0001"]
    assert path.with_suffix(".sqlite3.broken").exists()


def test_items_read_grow_linearly_with_the_number_of_trials() -> None:
    """The benchmark's count, small: doubling the trials doubles the reads, no more."""
    from benchmarks.history_reads import count_reads

    small = count_reads(MemoryStore(), 100)
    large = count_reads(MemoryStore(), 200)
    assert small <= 3 * 100
    assert large <= 2 * small + 2
    # The baseline without the cache is quadratic: the check above can fail.
    assert count_reads(MemoryStore(), 200, incremental=False) > 4 * large


def test_the_memory_cache_keeps_only_the_most_recent_participants() -> None:
    cache = MemoryHistoryCache(max_keys=2)
    for name in ("a", "b"):
        cache.put((MATCH, name), Prefix("0001", ()))
    assert cache.get((MATCH, "a")) is not None  # "a" is now the most recent
    cache.put((MATCH, "c"), Prefix("0001", ()))
    assert cache.get((MATCH, "b")) is None
    assert cache.get((MATCH, "a")) is not None and cache.get((MATCH, "c")) is not None


def test_an_evicted_participant_is_read_back_from_disk(tmp_path: Path) -> None:
    store = RecordingStore()
    for n in range(1, 3):
        scored(store, n, float(n), 1.0)
    cache = SqliteHistoryCache(tmp_path / "h.sqlite3", scope="t")
    builder = HistoryBuilder(store, cache)
    builder.collect(ref(3))
    for n in range(2000):  # push p-1 out of the memory layer
        cache.put((MATCH, f"other-{n}"), Prefix("0001", ()))
    store.ranges.clear()
    assert [e.trial_no for e in builder.collect(ref(3)).entries] == ["0001", "0002"]
    assert store.ranges == []
