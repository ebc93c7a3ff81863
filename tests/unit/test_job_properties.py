"""Any queue body, table item or container output settles the job with a clear outcome.

Property-based (Hypothesis) over the real jobs (``EvaluateJob``, ``ScoreJob``)
on the in-memory store and the package's stub executor: whatever the body,
the stored solution or evaluation, or the container's stdout, the job ends in
``Done`` (a Success or Failed item written, with its flag), ``Drop`` (a body
that can never succeed), ``HandBack`` or ``Resend`` (it goes back), and never raises.
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from opthub_runner_admin.executor import Execution
from opthub_runner_admin.executor.stub import StubExecutor
from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache
from opthub_runner_admin.jobs.evaluate import EvaluateJob
from opthub_runner_admin.jobs.outcome import Done, Drop, HandBack, JobContext, Resend
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.matches import ImageSpec, MatchSpec
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.queue import Message
from opthub_runner_admin.store.items import EVALUATIONS, success_key
from opthub_runner_admin.store.memory import MemoryStore
from tests.support.properties import JOB_EXAMPLES, tried

MATCH = "3b7c0b1e-0000-4000-8000-0000000000aa"
REF = TrialRef(MATCH, "p-1", "0001")
START = datetime(2026, 12, 1, tzinfo=timezone.utc)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
#: What boto3 reads back from DynamoDB: Decimals, text, booleans, null, binary, sets, lists, maps.
dynamo_values = st.recursive(
    st.none()
    | st.booleans()
    | st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.text(max_size=20)
    | st.binary(max_size=8)
    | st.frozensets(st.text(max_size=4), max_size=3).map(set),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
body_fields = st.fixed_dictionaries(
    {},
    optional={
        "MatchID": st.just(MATCH) | st.just(f"Match#{MATCH}") | json_values,
        "ParticipantID": st.just("p-1") | json_values,
        "TrialNo": st.just("0001") | st.integers() | json_values,
        "Deferrals": json_values,
    },
)
bodies = (
    body_fields.map(lambda d: json.dumps(d, allow_nan=True))
    | st.text(max_size=200)
    | json_values.map(lambda v: json.dumps(v, allow_nan=True))
)
#: A last stdout line: an object with the result's keys holding anything, or any text.
result_lines = st.fixed_dictionaries(
    {},
    optional={
        "objective": json_values,
        "constraint": json_values,
        "info": json_values,
        "feasible": json_values,
        "error": json_values,
        "score": json_values,
    },
).map(lambda d: json.dumps(d, allow_nan=True)) | st.text(max_size=200)


class Matches:
    def get(self, match_id: str) -> MatchSpec:
        return MatchSpec(match_id, ImageSpec("problem:1", {}), ImageSpec("indicator:1", {}))


def ran(stdout: str, exit_code: int | None = 0) -> Execution:
    return Execution(
        exit_code=exit_code,
        stdout=stdout,
        stderr="",
        timed_out=exit_code is None,
        started_at=START,
        finished_at=START + timedelta(seconds=1),
    )


def message(body: str) -> Message:
    return Message("id-1", body, "receipt", 1, time.monotonic())


def context() -> JobContext:
    return JobContext(deadline=time.monotonic() + 3600, cancel=threading.Event())


def evaluate(store: MemoryStore, body: str, stdout: str, exit_code: int | None = 0) -> object:
    executor = StubExecutor(answers=[ran(stdout, exit_code)])
    job = EvaluateJob(store=store, matches=Matches(), executor=executor, timeout=60)
    return job(message(body), context())


def score(store: MemoryStore, body: str, stdout: str) -> object:
    job = ScoreJob(
        store=store,
        matches=Matches(),
        executor=StubExecutor(answers=[ran(stdout)]),
        history=HistoryBuilder(store, MemoryHistoryCache()),
        timeout=60,
        max_deferrals=3,
        defer_seconds=7,
    )
    return job(message(body), context())


def assert_settled(store: MemoryStore, outcome: object, kind: str) -> None:
    assert isinstance(outcome, (Done, Drop, HandBack, Resend)), outcome
    if isinstance(outcome, Done):  # a result item and its flag, nothing else
        results = store.evaluation_items() if kind == "evaluation" else store.score_items()
        assert len(results) == 1, results
        assert results[0]["Status"] in ("Success", "Failed")
        if results[0]["Status"] == "Failed":
            assert results[0]["ErrorMessage"]
    if isinstance(outcome, Drop):
        assert outcome.reason


@tried(JOB_EXAMPLES)
@given(bodies)
def test_any_queue_body_settles(body: str) -> None:
    store = MemoryStore()
    store.put_solution(REF, [1, 2])
    outcome = evaluate(store, body, '{"objective": 1}')
    assert_settled(store, outcome, "evaluation")


@tried(JOB_EXAMPLES)
@given(dynamo_values)
def test_any_stored_solution_settles(variable: Any) -> None:
    store = MemoryStore()
    store.put_item({**store_solution_key(), "Variable": variable, "ResourceType": "Solution"})
    outcome = evaluate(store, body_of(REF), '{"objective": 1}')
    assert_settled(store, outcome, "evaluation")


@tried(JOB_EXAMPLES)
@given(
    st.dictionaries(st.sampled_from(["Objective", "Constraint", "Info", "Feasible"]), dynamo_values)
)
def test_any_stored_evaluation_settles_the_score(fields: dict[str, Any]) -> None:
    store = MemoryStore()
    store.put_item({**success_key(EVALUATIONS, REF), "TrialNo": REF.trial_no, **fields})
    outcome = score(store, body_of(REF), '{"score": 1}')
    assert_settled(store, outcome, "score")


@tried(JOB_EXAMPLES)
@given(st.lists(st.text(max_size=40), max_size=3), result_lines, st.sampled_from([0, 1, None]))
def test_any_problem_output_settles(before: list[str], last: str, exit_code: int | None) -> None:
    store = MemoryStore()
    store.put_solution(REF, [1, 2])
    outcome = evaluate(store, body_of(REF), "\n".join([*before, last]), exit_code)
    assert isinstance(outcome, Done), outcome  # the run happened: its result is written
    assert_settled(store, outcome, "evaluation")


@tried(JOB_EXAMPLES)
@given(result_lines)
def test_any_indicator_output_settles(last: str) -> None:
    store = MemoryStore()
    store.put_item(
        {**success_key(EVALUATIONS, REF), "TrialNo": REF.trial_no, "Objective": Decimal(1)}
    )
    outcome = score(store, body_of(REF), last)
    assert_settled(store, outcome, "score")
    if isinstance(outcome, Done):
        value = store.score_items()[0].get("Value")
        assert value is None or (isinstance(value, Decimal) and not math.isnan(value))


def body_of(ref: TrialRef) -> str:
    return json.dumps(
        {"MatchID": ref.match_id, "ParticipantID": ref.participant_id, "TrialNo": ref.trial_no}
    )


def store_solution_key() -> dict[str, Any]:
    from opthub_runner_admin.store.items import SOLUTIONS, trial_key

    return {**trial_key(SOLUTIONS, REF), "TrialNo": REF.trial_no}
