"""Evaluate and score jobs through the seams: in-memory store, scripted executor.

These pin the contract's decisions (what is Success, what is Failed, what is
made visible again or resent); the end-to-end tests run the same jobs on real Docker and moto.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from opthub_runner_admin.errors import AdminError, ResultRejected, ResultTooLarge, TransientError
from opthub_runner_admin.executor import DockerUnavailable, Execution, ImageNotAvailable
from opthub_runner_admin.executor.stub import StubExecutor
from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache
from opthub_runner_admin.jobs.admission import Admission
from opthub_runner_admin.jobs.evaluate import EvaluateJob
from opthub_runner_admin.jobs.messages import DEFERRALS_KEY
from opthub_runner_admin.jobs.outcome import Cause, Done, Drop, HandBack, JobContext, Resend
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.jobs.trial_job import MISSING_INPUT_RECEIVES, UNEXPECTED_ERROR_RECEIVES
from opthub_runner_admin.matches import ImageSpec, MatchSpec, UnknownMatch
from opthub_runner_admin.model import Evaluation, Failure, Score, Timing, TrialRef
from opthub_runner_admin.queue import Message
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.values import DYNAMO_MAX

MATCH = "3b7c0b1e-0000-4000-8000-000000000001"
START = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)


def scripted(*answers: Execution | Exception) -> StubExecutor:
    """The package's stub executor answering with prepared runs (or raising), in order."""
    return StubExecutor(answers=answers)


def ran(
    stdout: str = "",
    stderr: str = "",
    exit_code: int | None = 0,
    timed_out: bool = False,
    seconds: float = 1.0,
) -> Execution:
    return Execution(
        exit_code=None if timed_out else exit_code,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        started_at=START,
        finished_at=START + timedelta(seconds=seconds),
    )


class Matches:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def get(self, match_id: str) -> MatchSpec:
        if self.error:
            raise self.error
        return MatchSpec(
            match_id,
            ImageSpec("problem:1", {"SECRET": "s3cr3t"}),
            ImageSpec("indicator:1", {}),
        )


def ref(n: int = 1) -> TrialRef:
    return TrialRef(MATCH, "p-1", f"{n:04d}")


def message(r: TrialRef, receive_count: int = 1, **extra: Any) -> Message:
    body = json.dumps(
        {"MatchID": r.match_id, "ParticipantID": r.participant_id, "TrialNo": r.trial_no, **extra}
    )
    return Message("id-1", body, "receipt", receive_count, time.monotonic())


def ctx() -> JobContext:
    return JobContext(deadline=time.monotonic() + 3600, cancel=threading.Event())


def evaluate(
    store: MemoryStore,
    executor: StubExecutor,
    variable: Any = (1, 2),
    matches: Matches | None = None,
) -> Any:
    store.put_solution(ref(), list(variable) if isinstance(variable, tuple) else variable)
    job = EvaluateJob(store=store, matches=matches or Matches(), executor=executor, timeout=60)
    return job(message(ref()), ctx())


def only_evaluation(store: MemoryStore) -> dict[str, Any]:
    items = store.evaluation_items()
    assert len(items) == 1
    return items[0]


def test_success_writes_every_attribute() -> None:
    store = MemoryStore()
    executor = scripted(
        ran(
            'log line\n{"objective": 5, "constraint": [0.5, -1], '
            '"info": {"ok": true}, "feasible": true}\n'
        )
    )
    outcome = evaluate(store, executor, variable=[1.5, {"a": 2}])
    assert outcome == Done("evaluation Success")
    assert executor.specs[0].stdin_lines == ['[1.5, {"a": 2}]']
    assert executor.specs[0].image == "problem:1"
    assert executor.specs[0].environment == {"SECRET": "s3cr3t"}
    item = only_evaluation(store)
    assert item["ID"] == f"Evaluations#Match#{MATCH}#p-1"
    assert item["Trial"] == "Success#0001"
    assert item["Status"] == "Success" and item["ResourceType"] == "Evaluation"
    assert item["Objective"] == Decimal(5)
    assert item["Constraint"] == [Decimal("0.5"), Decimal(-1)]
    assert item["Info"] == {"ok": True} and item["Feasible"] is True
    assert item["StartedAt"] == "2026-11-25T10:00:00.000Z"
    assert item["FinishedAt"] == "2026-11-25T10:00:01.000Z"
    assert item["IgnoreStream"] is False
    flag = store.item(item["ID"], "0001")
    assert flag is not None and flag["IgnoreStream"] is True


def test_defaults_for_constraint_info_and_feasible() -> None:
    store = MemoryStore()
    evaluate(store, scripted(ran('{"objective": [1, 2.5]}')))
    item = only_evaluation(store)
    assert item["Objective"] == [Decimal(1), Decimal("2.5")]
    assert item["Constraint"] is None and item["Info"] == {} and item["Feasible"] is None


def test_nonzero_exit_with_a_result_is_a_success() -> None:
    store = MemoryStore()
    evaluate(store, scripted(ran('{"objective": 1}', exit_code=3)))
    assert only_evaluation(store)["Status"] == "Success"


def test_values_dynamodb_cannot_hold_do_not_lose_the_trial() -> None:
    store = MemoryStore()
    line = (
        '{"objective": NaN, "constraint": [Infinity, -Infinity, 1e999, 1e-300], '
        '"info": {"flag": false, "big": 123456789012345678901234567890123456789012}}'
    )
    evaluate(store, scripted(ran(line)))
    item = only_evaluation(store)
    assert item["Status"] == "Success"
    assert item["Objective"] is None
    assert item["Constraint"] == [DYNAMO_MAX, DYNAMO_MAX.copy_negate(), DYNAMO_MAX, Decimal(0)]
    assert item["Info"]["flag"] is False
    assert item["Info"]["big"] == Decimal("1.2345678901234567890123456789012345679E+41")


@pytest.mark.parametrize(
    ("run", "participant", "admin"),
    [
        (ran("no json here", "trace", exit_code=2), "printed no result", "exit code 2"),
        (ran(""), "printed no result", "stdout is empty"),
        (ran('{"objective": 1}\nTrailing words'), "printed no result", "not JSON"),
        (ran('{"value": 1}'), "returned no objective", "no 'objective'"),
        (ran("[1, 2]"), "printed no result", "not an object"),
        (ran("[" * 100000 + "]" * 100000), "printed no result", "last stdout line"),
        (
            ran('{"error": "dimension must be 2"}', "stack"),
            "dimension must be 2",
            "reported an error",
        ),
        (ran("", "slow", timed_out=True, seconds=60), "timed out after 60 seconds", "timeout"),
    ],
)
def test_failures_tell_the_participant_little_and_the_admin_more(
    run: Execution, participant: str, admin: str
) -> None:
    store = MemoryStore()
    outcome = evaluate(store, scripted(run))
    assert outcome == Done("evaluation Failed")
    item = only_evaluation(store)
    assert item["Trial"] == "Failed#0001" and item["Status"] == "Failed"
    assert participant in item["ErrorMessage"]
    assert admin in item["AdminErrorMessage"]
    assert "Objective" not in item
    if run.stderr and "error" not in participant:
        assert run.stderr not in item["ErrorMessage"]
        assert run.stderr in item["AdminErrorMessage"]


def test_the_timeout_message_names_the_configured_limit_not_the_measured_time() -> None:
    store = MemoryStore()
    store.put_solution(ref(), [1])
    # A loaded machine: the run was killed at its 3 s limit but took 4.4 s in all.
    executor = scripted(ran("", timed_out=True, seconds=4.4))
    job = EvaluateJob(store=store, matches=Matches(), executor=executor, timeout=3)
    job(message(ref()), ctx())
    assert only_evaluation(store)["ErrorMessage"] == "The evaluation timed out after 3 seconds."


def test_an_already_evaluated_trial_is_not_run_again() -> None:
    store = MemoryStore()
    evaluate(store, scripted(ran('{"objective": 1}')))
    executor = scripted()
    job = EvaluateJob(store=store, matches=Matches(), executor=executor, timeout=60)
    assert isinstance(job(message(ref()), ctx()), Done)
    assert executor.specs == []
    assert len(store.evaluation_items()) == 1


def test_a_missing_solution_is_retried_then_dropped() -> None:
    store = MemoryStore()
    job = EvaluateJob(store=store, matches=Matches(), executor=scripted(), timeout=60)
    first = job(message(ref(), receive_count=1), ctx())
    assert isinstance(first, HandBack)
    assert isinstance(job(message(ref(), receive_count=5), ctx()), Drop)
    assert store.evaluation_items() == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"MatchID": "m"}',
        '{"MatchID": "m", "ParticipantID": "p", "TrialNo": null}',
        '{"MatchID": "m", "ParticipantID": "p", "TrialNo": "one"}',
    ],
)
def test_bad_messages_are_dropped(body: str) -> None:
    job = EvaluateJob(store=MemoryStore(), matches=Matches(), executor=scripted(), timeout=60)
    outcome = job(Message("id", body, "r", 1, time.monotonic()), ctx())
    assert isinstance(outcome, Drop)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (UnknownMatch("no match"), Cause(f"match:{MATCH}")),
        (AdminError("not the administrator"), Cause(f"match:{MATCH}")),
        (ImageNotAvailable("cannot pull"), Cause(f"match:{MATCH}")),
        (DockerUnavailable("daemon gone"), Cause("docker", shared=True)),
        (TransientError("API timeout"), Cause("api", shared=True)),
    ],
)
def test_administrator_and_transient_trouble_writes_nothing_and_puts_back(
    error: Exception, cause: Cause
) -> None:
    store = MemoryStore()
    source_error = error if not isinstance(error, (ImageNotAvailable, DockerUnavailable)) else None
    executor = scripted(error)
    outcome = evaluate(store, executor, matches=Matches(source_error))
    assert isinstance(outcome, Resend)  # a fresh copy: nobody's trial is at fault
    # Blamed on what failed: one match backs off alone, an outage pauses everything.
    assert outcome.backoff == cause
    assert json.loads(outcome.body)["TrialNo"] == "0001"
    assert store.evaluation_items() == []


class FlakyStore(MemoryStore):
    def __init__(self, failures: list[Exception]) -> None:
        super().__init__()
        self.failures = failures

    def put_evaluation(
        self, ref: TrialRef, result: Evaluation | Failure, timing: Timing
    ) -> list[str]:
        if self.failures:
            raise self.failures.pop(0)
        return super().put_evaluation(ref, result, timing)


def test_a_write_is_retried_until_it_succeeds() -> None:
    store = FlakyStore([TransientError("throttled"), TransientError("connection reset")])
    outcome = evaluate(store, scripted(ran('{"objective": 1}')))
    assert outcome == Done("evaluation Success")
    assert only_evaluation(store)["Status"] == "Success"


def test_a_result_too_large_becomes_a_failure() -> None:
    store = FlakyStore([ResultTooLarge("item over 400 KB")])
    evaluate(store, scripted(ran('{"objective": 1}')))
    item = only_evaluation(store)
    assert item["Status"] == "Failed"
    assert "too large" in item["ErrorMessage"]
    assert "400 KB" in item["AdminErrorMessage"]


def test_a_result_rejected_for_another_reason_is_not_called_too_large() -> None:
    store = FlakyStore([ResultRejected("range key over 1024 bytes")])
    assert evaluate(store, scripted(ran('{"objective": 1}'))) == Done("evaluation Failed")
    item = only_evaluation(store)
    assert item["ErrorMessage"] == "The evaluation result could not be stored."
    assert "range key over 1024 bytes" in item["AdminErrorMessage"]


def test_the_too_large_replacement_is_tried_once() -> None:
    store = FlakyStore([ResultTooLarge("item over 400 KB"), ResultTooLarge("still too large")])
    outcome = evaluate(store, scripted(ran('{"objective": 1}')))
    assert isinstance(outcome, Drop)
    assert store.evaluation_items() == []


class BrokenStore(MemoryStore):
    """A store whose reads raise what no code path expects (a bug, a library's surprise)."""

    def get_solution(self, ref: TrialRef) -> Any:
        raise KeyError("Variable")


def test_an_unexpected_error_is_retried_a_bounded_number_of_times_then_failed() -> None:
    store = BrokenStore()
    job = EvaluateJob(store=store, matches=Matches(), executor=scripted(), timeout=60)
    outcomes = [
        job(message(ref(), receive_count=n), ctx()) for n in range(1, UNEXPECTED_ERROR_RECEIVES + 1)
    ]
    assert all(isinstance(o, HandBack) for o in outcomes[:-1]), outcomes
    assert outcomes[-1] == Done("evaluation Failed")
    item = only_evaluation(store)
    assert item["Status"] == "Failed"
    assert "error in the runner" in item["ErrorMessage"]
    assert "KeyError: 'Variable'" in item["AdminErrorMessage"]


class BrokenWrites(BrokenStore):
    def put_evaluation(
        self, ref: TrialRef, result: Evaluation | Failure, timing: Timing
    ) -> list[str]:
        raise UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed")


def test_an_unexpected_error_that_also_breaks_the_failed_write_is_dropped() -> None:
    job = EvaluateJob(store=BrokenWrites(), matches=Matches(), executor=scripted(), timeout=60)
    outcome = job(message(ref(), receive_count=UNEXPECTED_ERROR_RECEIVES), ctx())
    assert isinstance(outcome, Drop) and "KeyError" in outcome.reason


# --- scoring ---------------------------------------------------------------

TIMING = Timing(START, START)


def score_job(store: MemoryStore, executor: StubExecutor, max_deferrals: int = 3) -> ScoreJob:
    return ScoreJob(
        store=store,
        matches=Matches(),
        executor=executor,
        history=HistoryBuilder(store, MemoryHistoryCache()),
        timeout=60,
        max_deferrals=max_deferrals,
        defer_seconds=7,
    )


def test_score_runs_the_indicator_with_the_two_lines() -> None:
    store = MemoryStore()
    store.put_evaluation(ref(1), Evaluation(objective=3.0, info={"k": True}), TIMING)
    store.put_score(ref(1), Score(3), TIMING)
    store.put_evaluation(ref(2), Evaluation(objective=[4.665, 0]), TIMING)
    executor = scripted(ran('{"score": 0.5}'))
    outcome = score_job(store, executor)(message(ref(2)), ctx())
    assert outcome == Done("score Success")
    current, history = executor.specs[0].stdin_lines
    assert json.loads(current) == {
        "objective": [4.665, 0],
        "constraint": None,
        "info": {},
        "feasible": None,
    }
    assert "[4.665, 0]" in current
    assert json.loads(history) == [
        {
            "trial_no": "0001",
            "objective": 3,
            "constraint": None,
            "info": {"k": True},
            "feasible": None,
            "score": 3,
        }
    ]
    items = store.score_items()
    assert [(i["Trial"], i["Value"], i["ResourceType"]) for i in items] == [
        ("Success#0001", Decimal(3), "Score"),
        ("Success#0002", Decimal("0.5"), "Score"),
    ]


def test_a_pending_earlier_score_defers_without_touching_the_receive_count() -> None:
    store = MemoryStore()
    store.put_evaluation(ref(1), Evaluation(objective=3.0), TIMING)  # no score yet
    store.put_evaluation(ref(2), Evaluation(objective=2.0), TIMING)
    executor = scripted(ran('{"score": 1}'))
    job = score_job(store, executor, max_deferrals=2)
    outcome = job(message(ref(2)), ctx())
    assert isinstance(outcome, Resend) and outcome.delay == 7
    assert json.loads(outcome.body)[DEFERRALS_KEY] == 1
    assert executor.specs == []
    again = job(Message("id-2", outcome.body, "r", 1, time.monotonic()), ctx())
    assert isinstance(again, Resend) and json.loads(again.body)[DEFERRALS_KEY] == 2
    # Past the bound: scored with what exists.
    last = job(Message("id-3", again.body or "", "r", 1, time.monotonic()), ctx())
    assert last == Done("score Success")
    assert json.loads(executor.specs[0].stdin_lines[1]) == []


def test_a_trial_without_evaluation_is_made_visible_then_dropped_never_a_failed_score(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    job = score_job(store, scripted())
    first = job(message(ref(1)), ctx())
    assert isinstance(first, HandBack)  # made visible: the receive count rises
    caplog.set_level(logging.INFO)
    last = job(message(ref(1), receive_count=MISSING_INPUT_RECEIVES), ctx())
    assert isinstance(last, Drop)
    assert store.score_items() == []
    assert "no successful evaluation in the table" in caplog.text


def test_a_failed_evaluation_gets_no_score() -> None:
    store = MemoryStore()
    store.put_evaluation(ref(1), Failure("bad", "x"), TIMING)
    outcome = score_job(store, scripted())(
        message(ref(1), receive_count=MISSING_INPUT_RECEIVES), ctx()
    )
    assert isinstance(outcome, Drop)
    assert store.score_items() == []


def test_an_indicator_printing_error_null_succeeds() -> None:
    store = MemoryStore()
    store.put_evaluation(ref(1), Evaluation(objective=1.0), TIMING)
    score_job(store, scripted(ran('{"score": 0.7, "error": null}')))(message(ref(1)), ctx())
    item = store.score_items()[0]
    assert item["Status"] == "Success" and item["Value"] == Decimal("0.7")


def test_an_indicator_exiting_nonzero_with_a_score_succeeds_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    store.put_evaluation(ref(1), Evaluation(objective=1.0), TIMING)
    job = score_job(store, scripted(ran('{"score": 2}', exit_code=3)))
    assert job(message(ref(1)), ctx()) == Done("score Success")
    assert store.score_items()[0]["Value"] == Decimal(2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("exited with code 3" in text for text in warnings), warnings


@pytest.mark.parametrize(
    ("line", "stored"),
    [
        ('{"score": Infinity}', DYNAMO_MAX),
        ('{"score": -1e999}', DYNAMO_MAX.copy_negate()),
        ('{"score": NaN}', None),
        ('{"score": "high"}', None),
        ('{"score": true}', None),
        ('{"points": 1}', None),
    ],
)
def test_score_values(line: str, stored: Decimal | None) -> None:
    store = MemoryStore()
    store.put_evaluation(ref(1), Evaluation(objective=1.0), TIMING)
    score_job(store, scripted(ran(line)))(message(ref(1)), ctx())
    item = store.score_items()[0]
    if stored is None:
        assert item["Status"] == "Failed"
        assert "no valid score" in item["ErrorMessage"]
    else:
        assert item["Status"] == "Success" and item["Value"] == stored


# --- admission: the keys the worker sees --------------------------------------


def test_the_scorer_orders_a_participant_by_trial_and_the_evaluator_does_not() -> None:
    store = MemoryStore()
    scorer = score_job(store, scripted(ran('{"score": 1}')))
    evaluator = EvaluateJob(store=store, matches=Matches(), executor=scorer.executor, timeout=60)
    seventh = message(ref(7))
    other = message(TrialRef(MATCH, "p-2", "0007"))
    assert scorer.admission(seventh).position == 7
    assert evaluator.admission(seventh).position is None
    # One group per participant of a match; a broken match backs off by its key.
    assert scorer.admission(seventh).group == evaluator.admission(message(ref(1))).group
    assert scorer.admission(seventh).group != scorer.admission(other).group
    assert scorer.admission(seventh).causes == (f"match:{MATCH}",)


def test_an_unreadable_body_has_no_keys_so_that_it_runs_and_is_dropped() -> None:
    job = score_job(MemoryStore(), scripted(ran('{"score": 1}')))
    bad = Message("id", "not json", "r", 1, time.monotonic())
    assert job.admission(bad) == Admission()


def test_an_empty_error_text_is_not_a_blank_message_for_the_participant() -> None:
    # Found by tests/unit/test_job_properties.py: '{"score": null, "error": ""}'.
    store = MemoryStore()
    executor = scripted(ran(stdout='{"objective": null, "error": "  "}'))
    outcome = evaluate(store, executor)
    assert isinstance(outcome, Done)
    assert only_evaluation(store)["ErrorMessage"] == (
        "The evaluation failed: the problem program reported an error without a message."
    )
