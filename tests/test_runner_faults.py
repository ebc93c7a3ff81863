"""A fault of the runner's own machine is never settled as a participant's Failed (#21)."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from opthub_runner_admin.jobs import trial_job
from opthub_runner_admin.jobs.evaluate import EvaluateJob
from opthub_runner_admin.jobs.outcome import Done, JobContext, Outcome, Retry
from opthub_runner_admin.jobs.runner_fault import RUNNER, RunnerFaults
from opthub_runner_admin.jobs.trial_job import UNEXPECTED_ERROR_RECEIVES
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.observe.board import StatusBoard, stalled
from opthub_runner_admin.observe.status import status_line
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.worker import Worker, WorkerSettings
from tests.test_history_cache_faults import Clock
from tests.test_jobs import MATCH, Matches, ScriptedExecutor, ctx, message, ran


class DiskFullStore(MemoryStore):
    """Reads fail as a full disk under one of the runner's own files would."""

    def get_solution(self, ref: TrialRef) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device", "/var/cache/opthub/x")


class SharedBugStore(MemoryStore):
    """Every participant's read raises the same surprise (a runner bug, not a message's)."""

    def get_solution(self, ref: TrialRef) -> Any:
        raise KeyError("Variable")


class OneBadMessageStore(MemoryStore):
    """Only participant p-bad's solution breaks the job (tied to that message's content)."""

    def get_solution(self, ref: TrialRef) -> Any:
        if ref.participant_id == "p-bad":
            raise KeyError(f"Variable of {ref.trial_no}")
        return super().get_solution(ref)


def job_on(store: MemoryStore) -> EvaluateJob:
    return EvaluateJob(store=store, matches=Matches(), executor=ScriptedExecutor(), timeout=60)


def test_an_oserror_goes_back_as_a_fresh_copy_however_often_it_comes() -> None:
    store = DiskFullStore()
    job = job_on(store)
    for n in range(1, 2 * UNEXPECTED_ERROR_RECEIVES + 1):
        msg = message(TrialRef(MATCH, "p-1", "0001"), receive_count=n)
        outcome = job(msg, ctx())
        assert isinstance(outcome, Retry), outcome
        # A fresh copy: its receive count starts again, so the fault spends none.
        assert outcome.body == msg.body
        assert outcome.backoff == RUNNER
    assert store.evaluation_items() == []


def test_the_same_error_for_two_participants_is_the_runners() -> None:
    store = SharedBugStore()
    job = job_on(store)
    first = job(message(TrialRef(MATCH, "p-1", "0001"), receive_count=1), ctx())
    # Not known as shared yet: released, one receive spent.
    assert isinstance(first, Retry) and first.body is None and first.backoff is None
    for n in range(1, UNEXPECTED_ERROR_RECEIVES + 2):
        for participant in ("p-2", "p-1"):
            msg = message(TrialRef(MATCH, participant, "0001"), receive_count=n + 1)
            outcome = job(msg, ctx())
            assert isinstance(outcome, Retry), outcome
            assert outcome.body == msg.body and outcome.backoff == RUNNER
    assert store.evaluation_items() == []


def test_an_error_tied_to_one_message_still_fails_that_trial_only() -> None:
    store = OneBadMessageStore()
    job = job_on(store)
    outcomes = [
        job(message(TrialRef(MATCH, "p-bad", "0001"), receive_count=n), ctx())
        for n in range(1, UNEXPECTED_ERROR_RECEIVES + 1)
    ]
    assert all(isinstance(o, Retry) and o.backoff is None for o in outcomes[:-1]), outcomes
    [item] = store.evaluation_items()
    assert item["Status"] == "Failed"


def test_a_signature_is_forgotten_after_its_window() -> None:
    now = [0.0]
    faults = RunnerFaults(window=10.0, clock=lambda: now[0])
    assert not faults.is_runners(KeyError("x"), ("m", "a"))
    now[0] = 11.0
    assert not faults.is_runners(KeyError("x"), ("m", "b"))
    assert faults.is_runners(KeyError("x"), ("m", "a"))
    assert faults.first_telling(KeyError("x"))
    assert not faults.first_telling(KeyError("x"))


def test_the_status_line_and_healthz_name_a_runner_fault_until_a_job_runs_through() -> None:
    clock = Clock()
    board = StatusBoard(slow_after=600, clock=clock)
    msg = message(TrialRef(MATCH, "p-1", "0001"))
    fault = Retry(30, "runner fault: OSError: [Errno 28] No space left", body="{}", backoff=RUNNER)
    board.job_started(msg)
    board.job_finished(msg, fault, 0.1)
    faulty = board.snapshot()
    board.job_started(msg)
    board.job_finished(msg, Done("evaluation Success"), 1.0)
    mended = board.snapshot()

    assert "RUNNER FAULT" in status_line("evaluator", faulty)
    assert "No space left" in status_line("evaluator", faulty)
    problem = stalled(faulty, stall_after=60, job_limit=600)
    assert problem is not None and "No space left" in problem
    assert "RUNNER FAULT" not in status_line("evaluator", mended)
    assert stalled(mended, stall_after=60, job_limit=600) is None


class DiskFullForAWhile(MemoryStore):
    """Reads fail with ENOSPC for the first ``failures`` calls, then the disk has room again."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def get_solution(self, ref: TrialRef) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().get_solution(ref)


def test_the_worker_outlives_a_full_disk_without_a_failed_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trial_job, "RUNNER_FAULT_DELAY", 0)
    participants = ["p-1", "p-2", "p-3"]
    # More failures than the 3-receive bound for every message: each would be Failed today.
    store = DiskFullForAWhile(failures=len(participants) * (UNEXPECTED_ERROR_RECEIVES + 1))
    queue = MemoryQueue()
    for participant in participants:
        store.put_solution(TrialRef(MATCH, participant, "0001"), [1])
        queue.send(message(TrialRef(MATCH, participant, "0001")).body)
    executor = ScriptedExecutor(*[ran('{"objective": 1}') for _ in participants])
    seen: list[int] = []
    job = EvaluateJob(store=store, matches=Matches(), executor=executor, timeout=60)

    def handler(msg: Message, context: JobContext) -> Outcome:
        seen.append(msg.receive_count)
        return job(msg, context)

    settings = WorkerSettings(
        poll_seconds=1,
        visibility_window=1,
        backoff_initial=0.01,
        backoff_max=0.02,
        max_jobs=len(participants),
    )
    stats = Worker(queue=queue, handler=handler, settings=settings, name="t").run()

    assert stats.done == len(participants)
    items = store.evaluation_items()
    assert len(items) == len(participants)
    assert all(item["Status"] == "Success" for item in items), items
    assert max(seen) == 1  # every hand-back was a fresh copy: no receive spent
    assert queue.visible_count() == 0 and queue.in_flight_count() == 0
