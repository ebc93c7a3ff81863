"""A fault of the runner's own machine is never a participant's Failed result.

The same unexpected error for trials of different participants, or an
``OSError`` of a file or of the machine's resources, sends the message back
unspent (a fresh copy) and pauses the runner; only an error tied to one
message's content is settled as Failed after its bounded receives.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
import uuid

import pytest

from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache
from opthub_runner_admin.jobs import trial_job
from opthub_runner_admin.jobs.outcome import RUNNER, HandBack, JobContext, Resend
from opthub_runner_admin.jobs.runner_faults import RunnerFaults
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.jobs.trial_job import UNEXPECTED_ERROR_RECEIVES
from opthub_runner_admin.model import Evaluation, Timing, TrialRef
from opthub_runner_admin.observe.board import StatusBoard
from opthub_runner_admin.observe.server import health_check
from opthub_runner_admin.observe.status import status_line
from opthub_runner_admin.platform_side.contract import job_body
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.store import JobInput
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.worker.loop import Worker
from opthub_runner_admin.worker.stats import WorkerSettings

from ..support.scoring import START, BestSoFar, OneMatch, expected_score, objective

TIMING = Timing(START, START)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ref(participant: str, trial: int = 1, match: str = "m") -> TrialRef:
    return TrialRef(match, participant, f"{trial:04d}")


def test_the_same_error_for_two_participants_is_the_runners() -> None:
    clock = Clock()
    faults = RunnerFaults(window=60, clock=clock)
    error = RuntimeError("database is locked")
    assert not faults.of_the_runner(error, ref("p-1"))
    assert not faults.of_the_runner(error, ref("p-1", 2))  # the same participant: no proof
    assert faults.of_the_runner(error, ref("p-2"))
    assert faults.of_the_runner(error, ref("p-1", 3, match="other"))  # another match
    assert not faults.of_the_runner(RuntimeError("another text"), ref("p-3"))
    clock.now += 61  # out of the window: forgotten
    assert not faults.of_the_runner(RuntimeError("another text"), ref("p-4"))


def test_an_oserror_of_a_file_or_of_the_machine_is_the_runners_at_once() -> None:
    faults = RunnerFaults()
    full = OSError(errno.ENOSPC, "No space left on device")
    assert faults.of_the_runner(full, ref("p-1"))
    gone = FileNotFoundError(errno.ENOENT, "No such file or directory", "/var/cache/x")
    assert faults.of_the_runner(gone, ref("p-1"))
    # The error of issue #21's full disk, met by one participant only: the runner's at once.
    assert faults.of_the_runner(sqlite3.OperationalError("database or disk is full"), ref("p-9"))
    assert not faults.of_the_runner(ValueError("bad value"), ref("p-1"))


class FailingStore(MemoryStore):
    """A table read that fails alike for everyone while ``failing`` is set (the machine's fault)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = threading.Event()

    def score_input(self, ref: TrialRef) -> JobInput[Evaluation]:
        if self.failing.is_set():
            raise RuntimeError("the runner's scratch space is gone")
        return super().score_input(ref)


def score_job(store: MemoryStore) -> ScoreJob:
    return ScoreJob(
        store=store,
        matches=OneMatch(),
        executor=BestSoFar(),
        history=HistoryBuilder(store, MemoryHistoryCache()),
        timeout=60,
        max_deferrals=3,
        defer_seconds=1,
    )


def test_a_runner_fault_goes_back_unspent_and_never_fails_the_trial() -> None:
    store = FailingStore()
    store.failing.set()
    job = score_job(store)
    ctx = JobContext(deadline=time.monotonic() + 600, cancel=threading.Event())
    first = job(Message("a", job_body(ref("p-1")), "r", 1, time.monotonic()), ctx)
    assert isinstance(first, HandBack)  # one trial alone: not proven yet
    # Another participant meets the same error, at what would be its last receive.
    last = job(
        Message("b", job_body(ref("p-2")), "r", UNEXPECTED_ERROR_RECEIVES, time.monotonic()), ctx
    )
    assert isinstance(last, Resend) and last.backoff == RUNNER
    assert store.score_items() == []


def test_a_worker_meeting_a_runner_fault_scores_everything_once_it_is_mended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every receive fails for a while: no Failed item, the runner paused, all exact after."""
    # The first trial to meet the error proves nothing yet and is released as any
    # unexpected error is; its 30 s delay would only lengthen the test.
    monkeypatch.setattr(trial_job, "UNEXPECTED_RETRY_DELAY", 1)
    match = str(uuid.uuid4())
    store = FailingStore()
    queue = MemoryQueue()
    refs = [TrialRef(match, f"p-{p}", "0001") for p in range(4)]
    for trial_ref in refs:
        participant = int(trial_ref.participant_id[2:])
        store.put_evaluation(trial_ref, Evaluation(objective=objective(participant, 1)), TIMING)
        queue.send(job_body(trial_ref))
    store.failing.set()
    board = StatusBoard(slow_after=600)
    worker = Worker(
        queue=queue,
        handler=score_job(store),
        settings=WorkerSettings(poll_seconds=1, workers=2, backoff_initial=0.2, backoff_max=0.5),
        events=board,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    # Far more receives than the bound that settles a message as Failed.
    while worker.stats.received < 4 * UNEXPECTED_ERROR_RECEIVES + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    snapshot = board.snapshot()
    assert snapshot.runner_fault, "the fault is not shown to the administrator"
    assert "RUNNER FAULT" in status_line("scorer", snapshot)
    assert health_check(stall_after=600, job_limit=600)(snapshot)
    assert store.score_items() == []
    store.failing.clear()  # mended: the runner recovers by itself
    while len(store.score_items()) < len(refs) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop(force=True)
    thread.join(30)
    items = store.score_items()
    assert [i["Status"] for i in items] == ["Success"] * len(refs)
    assert sorted(i["Value"] for i in items) == sorted(
        expected_score(int(r.participant_id[2:]), 1) for r in refs
    )
    assert board.snapshot().runner_fault == ""
