"""One contract for both stores: MemoryStore, and DynamoStore on moto and on MiniStack.

The assertions are on raw items, attribute by attribute with their types,
because the platform reads the table directly: the shapes are the contract.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.stub import Stubber

from opthub_runner_admin import errors
from opthub_runner_admin.model import Evaluation, Failure, Score, Timing, TrialRef
from opthub_runner_admin.platform_side.contract import put_solution
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.store.base import JobInput, Solution, TrialState
from opthub_runner_admin.store.dynamodb import UNPROCESSED_ATTEMPTS, DynamoStore, from_dynamodb
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.values import DYNAMO_MAX, ERROR_TEXT_LIMIT
from tests.support.imports import aws_libraries_imported_by
from tests.support.tiers import using

MATCH = "3b7c0b1e-0000-4000-8000-000000000001"
PARTICIPANT = "p-42"
TIMING = Timing(
    started_at=datetime(2026, 11, 25, 10, 1, 17, 123456, tzinfo=timezone.utc),
    finished_at=datetime(2026, 11, 25, 10, 2, 0, 5000, tzinfo=timezone.utc),
)
EVALUATIONS_ID = f"Evaluations#Match#{MATCH}#{PARTICIPANT}"
SCORES_ID = f"Scores#Match#{MATCH}#{PARTICIPANT}"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

Store = MemoryStore | DynamoStore


def ref(trial_no: str) -> TrialRef:
    return TrialRef(MATCH, PARTICIPANT, trial_no)


@dataclass(frozen=True)
class StoreHarness:
    """A store under test, its raw items, and the platform's side of the table."""

    make: Callable[..., Store]
    raw: Callable[[str, str], dict[str, Any] | None]
    put_solution: Callable[[TrialRef, Any], None]

    @property
    def store(self) -> Store:
        return self.make()


def _memory() -> StoreHarness:
    store = MemoryStore()

    def make(page_size: int | None = None) -> Store:
        return store

    return StoreHarness(make, store.item, store.put_solution)


def _dynamo(aws: AwsStack) -> StoreHarness:
    client = aws.clients.dynamodb

    def make(page_size: int | None = None) -> Store:
        return DynamoStore(client, aws.table_name, page_size=page_size)

    def raw(item_id: str, trial: str) -> dict[str, Any] | None:
        found = client.get_item(
            TableName=aws.table_name,
            Key={"ID": {"S": item_id}, "Trial": {"S": trial}},
            ConsistentRead=True,
        ).get("Item")
        if found is None:
            return None
        # DynamoDB answers 1E+40 as 41 digits, which boto3's own deserializer refuses.
        return from_dynamodb(found)

    def solution(trial: TrialRef, variable: Any) -> None:
        put_solution(client, aws.table_name, trial, variable)

    return StoreHarness(make, raw, solution)


@pytest.fixture(params=["memory", using("moto", "aws"), using("ministack", "ministack_aws")])
def harness(request: pytest.FixtureRequest) -> Iterator[StoreHarness]:
    """The in-memory store, then DynamoStore on a fresh table of each emulator."""
    if request.param == "memory":
        yield _memory()
    else:
        yield _dynamo(
            request.getfixturevalue("aws" if request.param == "moto" else "ministack_aws")
        )


def _common(kind: str, resource_type: str, status: str, trial_no: str) -> dict[str, Any]:
    return {
        "ID": f"{kind}#Match#{MATCH}#{PARTICIPANT}",
        "Trial": f"{status}#{trial_no}",
        "TrialNo": trial_no,
        "ResourceType": resource_type,
        "MatchID": f"Match#{MATCH}",
        "ParticipantID": PARTICIPANT,
        "StartedAt": "2026-11-25T10:01:17.123Z",
        "FinishedAt": "2026-11-25T10:02:00.005Z",
        "Status": status,
        "IgnoreStream": False,
    }


def _without_created_at(item: dict[str, Any] | None) -> dict[str, Any]:
    assert item is not None, "the item was not written"
    created_at = item.pop("CreatedAt")
    assert TIMESTAMP.match(created_at), created_at
    return item


def _assert_types(value: Any, expected: Any) -> None:
    """Equal, and of the same DynamoDB type all the way down (a bool is never a number)."""
    assert type(value) is type(expected), f"{value!r} is not a {type(expected).__name__}"
    if isinstance(expected, dict):
        assert value.keys() == expected.keys()
        for key in expected:
            _assert_types(value[key], expected[key])
    elif isinstance(expected, list):
        assert len(value) == len(expected)
        for got, want in zip(value, expected, strict=True):
            _assert_types(got, want)
    else:
        assert value == expected


# --- solutions ------------------------------------------------------------------


def test_a_solution_reads_back_as_plain_json(harness: StoreHarness) -> None:
    harness.put_solution(ref("0001"), [4.665, 0, {"flag": True, "none": None, "s": "x"}])
    solution = harness.store.get_solution(ref("0001"))
    assert solution is not None
    _assert_types(solution.variable, [4.665, 0, {"flag": True, "none": None, "s": "x"}])
    assert harness.store.get_solution(ref("0002")) is None


# --- evaluations and scores -------------------------------------------------------------


def test_a_success_evaluation_has_every_attribute_of_the_contract(harness: StoreHarness) -> None:
    evaluation = Evaluation(
        objective=[1.5, 2, -3e-5],
        constraint=None,
        info={"nested": {"ok": True, "values": [1, 2.5, None]}, "label": "a"},
        feasible=True,
    )
    assert harness.store.put_evaluation(ref("0007"), evaluation, TIMING) == []
    item = _without_created_at(harness.raw(EVALUATIONS_ID, "Success#0007"))
    expected = {
        **_common("Evaluations", "Evaluation", "Success", "0007"),
        "Objective": [Decimal("1.5"), Decimal(2), Decimal("-0.00003")],
        "Constraint": None,
        "Info": {
            "nested": {"ok": True, "values": [Decimal(1), Decimal("2.5"), None]},
            "label": "a",
        },
        "Feasible": True,
    }
    _assert_types(item, expected)
    assert harness.raw(EVALUATIONS_ID, "0007") == {
        "ID": EVALUATIONS_ID,
        "Trial": "0007",
        "IgnoreStream": True,
    }
    assert harness.store.get_evaluation(ref("0007")) == evaluation
    assert harness.store.is_evaluated(ref("0007"))
    assert not harness.store.is_evaluated(ref("0008"))


def test_an_evaluation_with_scalar_objective_and_defaults(harness: StoreHarness) -> None:
    harness.store.put_evaluation(ref("0001"), Evaluation(objective=3), TIMING)
    item = _without_created_at(harness.raw(EVALUATIONS_ID, "Success#0001"))
    _assert_types(item["Objective"], Decimal(3))
    assert item["Info"] == {} and item["Constraint"] is None and item["Feasible"] is None
    read = harness.store.get_evaluation(ref("0001"))
    assert read == Evaluation(objective=3, constraint=None, info={}, feasible=None)
    assert read is not None and type(read.objective) is int


def test_a_failed_evaluation_has_the_messages_and_no_result(harness: StoreHarness) -> None:
    failure = Failure(message="bad solution", admin_message="exit code 1\nstderr...")
    assert harness.store.put_evaluation(ref("0002"), failure, TIMING) == []
    item = _without_created_at(harness.raw(EVALUATIONS_ID, "Failed#0002"))
    expected = {
        **_common("Evaluations", "Evaluation", "Failed", "0002"),
        "ErrorMessage": "bad solution",
        "AdminErrorMessage": "exit code 1\nstderr...",
    }
    _assert_types(item, expected)
    assert harness.raw(EVALUATIONS_ID, "0002") == {
        "ID": EVALUATIONS_ID,
        "Trial": "0002",
        "IgnoreStream": True,
    }
    assert harness.store.get_evaluation(ref("0002")) is None
    assert harness.store.is_evaluated(ref("0002"))


def test_a_success_score_has_its_value(harness: StoreHarness) -> None:
    assert not harness.store.is_scored(ref("0003"))
    assert harness.store.put_score(ref("0003"), Score(0.7), TIMING) == []
    item = _without_created_at(harness.raw(SCORES_ID, "Success#0003"))
    _assert_types(item, {**_common("Scores", "Score", "Success", "0003"), "Value": Decimal("0.7")})
    assert harness.raw(SCORES_ID, "0003") == {
        "ID": SCORES_ID,
        "Trial": "0003",
        "IgnoreStream": True,
    }
    assert harness.store.is_scored(ref("0003"))


def test_a_failed_score_has_the_messages(harness: StoreHarness) -> None:
    harness.store.put_score(ref("0004"), Failure("no score", "indicator crashed"), TIMING)
    item = _without_created_at(harness.raw(SCORES_ID, "Failed#0004"))
    expected = {
        **_common("Scores", "Score", "Failed", "0004"),
        "ErrorMessage": "no score",
        "AdminErrorMessage": "indicator crashed",
    }
    _assert_types(item, expected)
    assert harness.store.is_scored(ref("0004"))


def test_values_dynamodb_cannot_carry_are_stored_as_the_contract_says(
    harness: StoreHarness,
) -> None:
    evaluation = Evaluation(
        objective=[math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 0.1],
        constraint=[True, False, 10**40],
        info={"deep": {"nan": math.nan, "flag": False}, "tiny": -5e-324},
        feasible=None,
    )
    notes = harness.store.put_evaluation(ref("0005"), evaluation, TIMING)
    item = harness.raw(EVALUATIONS_ID, "Success#0005")
    assert item is not None
    _assert_types(
        item["Objective"],
        [
            None,
            DYNAMO_MAX,
            DYNAMO_MAX.copy_negate(),
            DYNAMO_MAX,
            DYNAMO_MAX.copy_negate(),
            Decimal(0),
            Decimal("0.1"),
        ],
    )
    _assert_types(item["Constraint"], [True, False, Decimal(10**40)])
    _assert_types(item["Info"], {"deep": {"nan": None, "flag": False}, "tiny": Decimal(0)})
    assert len(notes) == 8
    assert any("objective[0]" in note and "NaN" in note for note in notes)
    assert any("info.deep.nan" in note for note in notes)
    read = harness.store.get_evaluation(ref("0005"))
    assert read is not None
    # Integral values read back as ints, however large (contract: "Values ...").
    biggest = int(DYNAMO_MAX)
    assert read.objective == [None, biggest, -biggest, biggest, -biggest, 0, 0.1]


def test_a_nan_score_is_stored_as_null_and_noted(harness: StoreHarness) -> None:
    notes = harness.store.put_score(ref("0006"), Score(math.nan), TIMING)
    item = harness.raw(SCORES_ID, "Success#0006")
    assert item is not None and item["Value"] is None
    assert notes and "NaN" in notes[0]


def test_error_texts_are_cut_in_the_middle(harness: StoreHarness) -> None:
    text = "START" + "m" * 50_000 + "END"
    harness.store.put_evaluation(ref("0009"), Failure(text, "ADMIN" + text), TIMING)
    item = harness.raw(EVALUATIONS_ID, "Failed#0009")
    assert item is not None
    for name, start in (("ErrorMessage", "START"), ("AdminErrorMessage", "ADMINSTART")):
        assert len(item[name]) <= ERROR_TEXT_LIMIT
        assert len(item[name]) > ERROR_TEXT_LIMIT - 100
        assert item[name].startswith(start) and item[name].endswith("mmmEND")


# --- one result per trial ---------------------------------------------------------------


def test_a_second_evaluation_is_already_done_and_overwrites_nothing(
    harness: StoreHarness,
) -> None:
    store = harness.store
    store.put_evaluation(ref("0001"), Evaluation(objective=1), TIMING)
    before = harness.raw(EVALUATIONS_ID, "Success#0001")
    with pytest.raises(errors.AlreadyDone):
        store.put_evaluation(ref("0001"), Failure("late failure", "admin"), TIMING)
    with pytest.raises(errors.AlreadyDone):
        store.put_evaluation(ref("0001"), Evaluation(objective=2), TIMING)
    assert harness.raw(EVALUATIONS_ID, "Failed#0001") is None
    assert harness.raw(EVALUATIONS_ID, "Success#0001") == before
    assert store.get_evaluation(ref("0001")) == Evaluation(objective=1)


def test_a_failed_evaluation_is_never_followed_by_a_success(harness: StoreHarness) -> None:
    harness.store.put_evaluation(ref("0001"), Failure("bad", "admin"), TIMING)
    with pytest.raises(errors.AlreadyDone):
        harness.store.put_evaluation(ref("0001"), Evaluation(objective=1), TIMING)
    assert harness.raw(EVALUATIONS_ID, "Success#0001") is None


def test_a_second_score_is_already_done(harness: StoreHarness) -> None:
    harness.store.put_score(ref("0001"), Score(1), TIMING)
    with pytest.raises(errors.AlreadyDone):
        harness.store.put_score(ref("0001"), Failure("late", "admin"), TIMING)
    with pytest.raises(errors.AlreadyDone):
        harness.store.put_score(ref("0001"), Score(2), TIMING)
    item = harness.raw(SCORES_ID, "Success#0001")
    assert item is not None and item["Value"] == 1
    assert harness.raw(SCORES_ID, "Failed#0001") is None


def test_evaluation_and_score_flags_are_independent(harness: StoreHarness) -> None:
    harness.store.put_evaluation(ref("0001"), Evaluation(objective=1), TIMING)
    harness.store.put_score(ref("0001"), Score(1), TIMING)
    assert harness.store.is_evaluated(ref("0001")) and harness.store.is_scored(ref("0001"))


# --- what a job reads first, in one read ---------------------------------------------------


def test_the_evaluation_input_is_the_flag_and_the_solution(harness: StoreHarness) -> None:
    store = harness.store
    assert store.evaluation_input(ref("0001")) == JobInput(done=False, value=None)
    harness.put_solution(ref("0001"), [1.5, {"k": True}])
    read = store.evaluation_input(ref("0001"))
    assert not read.done and read.value is not None
    _assert_types(read.value.variable, [1.5, {"k": True}])
    store.put_evaluation(ref("0001"), Failure("bad", "admin"), TIMING)
    assert store.evaluation_input(ref("0001")).done
    # Another trial's flag or solution is not this one's.
    assert store.evaluation_input(ref("0002")) == JobInput(done=False, value=None)


def test_the_score_input_is_the_flag_and_the_success_evaluation(harness: StoreHarness) -> None:
    store = harness.store
    store.put_evaluation(ref("0001"), Failure("bad", "admin"), TIMING)
    # A Failed evaluation is no input for the scorer.
    assert store.score_input(ref("0001")) == JobInput(done=False, value=None)
    store.put_evaluation(ref("0002"), Evaluation(objective=[1, 2], info={"n": 1}), TIMING)
    read = store.score_input(ref("0002"))
    assert not read.done and read.value is not None
    assert read.value.objective == [1, 2] and read.value.info == {"n": 1}
    store.put_score(ref("0002"), Score(3), TIMING)
    assert store.score_input(ref("0002")).done
    # The evaluation flag alone does not make the trial scored.
    assert not store.score_input(ref("0001")).done


# --- results DynamoDB cannot hold --------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_a_result_over_400_kb_is_too_large_and_writes_nothing(harness: StoreHarness) -> None:
    big = Evaluation(objective=1, info={"blob": "x" * 500_000})
    with pytest.raises(errors.ResultTooLarge):
        harness.store.put_evaluation(ref("0001"), big, TIMING)
    assert harness.raw(EVALUATIONS_ID, "0001") is None
    assert harness.raw(EVALUATIONS_ID, "Success#0001") is None
    # The trial is still open: a failure can be written instead.
    harness.store.put_evaluation(ref("0001"), Failure("result too large", "500 kB"), TIMING)
    assert harness.store.is_evaluated(ref("0001"))


def test_nesting_deeper_than_32_levels_is_too_large(harness: StoreHarness) -> None:
    # AWS counts the innermost value as a level: 31 maps around a scalar is 32 levels
    # and stored, 32 maps is refused. moto accepts one map more; MiniStack refuses it
    # as AWS does. The runner refuses it itself, before any write.
    harness.store.put_evaluation(ref("0001"), Evaluation(objective=1, info=_nested(31)), TIMING)
    read = harness.store.get_evaluation(ref("0001"))
    assert read is not None and read.info == _nested(31)
    with pytest.raises(errors.ResultTooLarge):
        harness.store.put_evaluation(ref("0002"), Evaluation(objective=_nested(32)), TIMING)
    with pytest.raises(errors.ResultTooLarge):  # deeper than Python's recursion limit
        harness.store.put_evaluation(ref("0003"), Evaluation(objective=_nested(5000)), TIMING)
    assert not harness.store.is_evaluated(ref("0002"))


def test_lone_surrogates_are_stored_as_replacement_characters(harness: StoreHarness) -> None:
    """JSON decodes "\\ud83d" to a lone surrogate, which no UTF-8 write accepts as it is."""
    cut = Evaluation(objective=["\ud83d"], info={"k\udc00": "a\ud83db"})
    notes = harness.store.put_evaluation(ref("0001"), cut, TIMING)
    assert notes and all("U+FFFD" in note for note in notes)
    item = harness.raw(EVALUATIONS_ID, "Success#0001")
    assert item is not None
    assert item["Objective"] == ["\ufffd"] and item["Info"] == {"k\ufffd": "a\ufffdb"}
    harness.store.put_evaluation(ref("0002"), Failure("cut \ud83d", "admin \ude00"), TIMING)
    failed = harness.raw(EVALUATIONS_ID, "Failed#0002")
    assert failed is not None
    assert (failed["ErrorMessage"], failed["AdminErrorMessage"]) == ("cut \ufffd", "admin \ufffd")


# --- trial states -------------------------------------------------------------------------


def _seed(store: Store, trial_no: str, kind: str) -> None:
    """kind: "scored", "score-failed", "unscored", "failed" (evaluation), or "none"."""
    if kind == "failed":
        store.put_evaluation(ref(trial_no), Failure("bad", "admin"), TIMING)
        return
    if kind == "none":
        return
    store.put_evaluation(ref(trial_no), Evaluation(objective=[int(trial_no), 0.5]), TIMING)
    if kind == "scored":
        store.put_score(ref(trial_no), Score(int(trial_no) / 10), TIMING)
    elif kind == "score-failed":
        store.put_score(ref(trial_no), Failure("no score", "admin"), TIMING)


def _summary(states: list[TrialState]) -> list[tuple[str, float | None, bool]]:
    return [(s.trial_no, s.entry.score if s.entry else None, s.resolved) for s in states]


def test_trial_states_combine_evaluations_and_scores(harness: StoreHarness) -> None:
    store = harness.store
    kinds = ["scored", "failed", "unscored", "score-failed", "none", "scored"]
    for number, kind in enumerate(kinds, start=1):
        _seed(store, f"{number:04d}", kind)
    states = store.trial_states(MATCH, PARTICIPANT, None, "0007")
    assert _summary(states) == [
        ("0001", 0.1, True),
        ("0002", None, True),
        ("0003", None, False),
        ("0004", None, True),
        ("0006", 0.6, True),
    ]
    entry = states[0].entry
    assert entry is not None
    assert entry.evaluation == Evaluation(objective=[1, 0.5])
    assert entry.as_json()["trial_no"] == "0001"


def test_trial_states_are_strictly_between_after_and_before(harness: StoreHarness) -> None:
    store = harness.store
    for number in range(1, 11):
        _seed(store, f"{number:04d}", "scored")
    states = store.trial_states(MATCH, PARTICIPANT, "0003", "0007")
    assert [s.trial_no for s in states] == ["0004", "0005", "0006"]
    assert store.trial_states(MATCH, PARTICIPANT, "0003", "0004") == []
    assert store.trial_states(MATCH, PARTICIPANT, None, "0001") == []
    assert store.trial_states(MATCH, "someone-else", None, "0011") == []


def test_trial_states_read_only_the_new_range(harness: StoreHarness) -> None:
    store = harness.store
    for number in range(1, 21):
        _seed(store, f"{number:04d}", "scored")
    start = store.items_read
    states = store.trial_states(MATCH, PARTICIPANT, "0018", "0020")
    assert [s.trial_no for s in states] == ["0019"]
    # One Success evaluation and one Success score: nothing of the 18 older trials.
    assert store.items_read - start == 2


def test_trial_numbers_keep_their_width(harness: StoreHarness) -> None:
    store = harness.store
    for trial_no in ("08", "09", "10", "11", "0010"):
        _seed(store, trial_no, "scored")
    states = store.trial_states(MATCH, PARTICIPANT, "08", "12")
    assert [s.trial_no for s in states] == ["09", "10", "11"]
    assert [s.trial_no for s in store.trial_states(MATCH, PARTICIPANT, None, "10")] == [
        "08",
        "09",
    ]


def test_trial_states_follow_every_page(harness: StoreHarness) -> None:
    store = harness.make(page_size=3)
    for number in range(1, 31):
        _seed(store, f"{number:04d}", "scored" if number % 5 else "failed")
    states = store.trial_states(MATCH, PARTICIPANT, None, "0031")
    assert [s.trial_no for s in states] == [f"{n:04d}" for n in range(1, 31)]
    assert sum(1 for s in states if s.entry is not None) == 24


# --- DynamoDB only ------------------------------------------------------------------------


def test_dynamodb_pages_of_one_megabyte_are_all_read(aws: AwsStack) -> None:
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    blob = "y" * 150_000
    for number in range(1, 11):
        trial = ref(f"{number:04d}")
        store.put_evaluation(trial, Evaluation(objective=number, info={"blob": blob}), TIMING)
        store.put_score(trial, Score(number), TIMING)
    first_page = aws.clients.dynamodb.query(
        TableName=aws.table_name,
        KeyConditionExpression="ID = :id AND begins_with(Trial, :s)",
        ExpressionAttributeValues={":id": {"S": EVALUATIONS_ID}, ":s": {"S": "Success#"}},
    )
    assert "LastEvaluatedKey" in first_page, "the setup must span more than one page"
    states = store.trial_states(MATCH, PARTICIPANT, None, "0011")
    assert [s.entry.score if s.entry else None for s in states] == list(range(1, 11))
    assert all(s.entry and s.entry.evaluation.info == {"blob": blob} for s in states)


def test_dynamodb_server_side_size_refusal_is_too_large(aws: AwsStack) -> None:
    """moto counts sizes its own way (limit 405000): the store must translate its refusal."""
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    with pytest.raises(errors.ResultTooLarge):
        store.put_evaluation(
            ref("0001"), Evaluation(objective=1, info={"blob": "z" * 406_000}), TIMING
        )
    assert not store.is_evaluated(ref("0001"))


def test_dynamodb_refusal_other_than_size_is_rejected_not_too_large(aws: AwsStack) -> None:
    """A sort key over DynamoDB's 1024 bytes is refused, and that is not the result's size."""
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    long_trial = TrialRef(MATCH, PARTICIPANT, "1" * 1100)
    with pytest.raises(errors.ResultRejected) as caught:
        store.put_evaluation(long_trial, Evaluation(objective=1), TIMING)
    assert not isinstance(caught.value, errors.ResultTooLarge)


def test_dynamodb_missing_table_is_fatal_and_names_table_name(aws: AwsStack) -> None:
    store = DynamoStore(aws.clients.dynamodb, f"missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(errors.FatalError) as caught:
        store.check()
    message = str(caught.value)
    assert "table_name" in message and store.table_name in message and "\n" not in message
    with pytest.raises(errors.FatalError):
        store.put_evaluation(ref("0001"), Evaluation(objective=1), TIMING)
    with pytest.raises(errors.FatalError):
        store.trial_states(MATCH, PARTICIPANT, None, "0002")


def test_a_job_input_is_one_request_to_dynamodb(aws: AwsStack) -> None:
    """The point of ``evaluation_input`` and ``score_input``: one round trip a job, not two."""
    client = aws.clients.dynamodb
    store = DynamoStore(client, aws.table_name)
    put_solution(client, aws.table_name, ref("0001"), [1])
    store.put_evaluation(ref("0002"), Evaluation(objective=1), TIMING)
    requests: list[str] = []

    def count(model: Any, **_: Any) -> None:
        requests.append(model.name)

    client.meta.events.register("before-call.dynamodb", count)
    try:
        assert store.evaluation_input(ref("0001")).value is not None
        assert store.score_input(ref("0002")).value is not None
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)
    assert requests == ["BatchGetItem", "BatchGetItem"]


def _batch_get_answer(table: str, items: list[dict[str, Any]], unprocessed: list[Any]) -> Any:
    answer: dict[str, Any] = {"Responses": {table: items}}
    if unprocessed:
        answer["UnprocessedKeys"] = {table: {"Keys": unprocessed, "ConsistentRead": True}}
    return answer


def test_keys_dynamodb_leaves_unprocessed_are_asked_again(aws: AwsStack) -> None:
    """AWS may answer a BatchGetItem with UnprocessedKeys (throttling); no emulator does.

    So the answers are DynamoDB's documented shapes, given by botocore's own
    Stubber: the left key is asked again alone, and a key never processed
    fails the read as throttling does (the message comes back later).
    """
    client = aws.clients.dynamodb
    store = DynamoStore(client, aws.table_name)
    table = aws.table_name
    flag = {"ID": {"S": EVALUATIONS_ID}, "Trial": {"S": "0001"}}
    solution_key = {"ID": {"S": f"Solutions#Match#{MATCH}#{PARTICIPANT}"}, "Trial": {"S": "0001"}}
    solution = {**solution_key, "Variable": {"L": [{"N": "2"}]}}
    both = {table: {"Keys": [flag, solution_key], "ConsistentRead": True}}
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_item", _batch_get_answer(table, [], [solution_key]), {"RequestItems": both}
        )
        stub.add_response(
            "batch_get_item",
            _batch_get_answer(table, [solution], []),
            {"RequestItems": {table: {"Keys": [solution_key], "ConsistentRead": True}}},
        )
        read = store.evaluation_input(ref("0001"))
        stub.assert_no_pending_responses()
    assert not read.done and read.value is not None and read.value.variable == [2]
    with Stubber(client) as stub:
        for _ in range(UNPROCESSED_ATTEMPTS):
            stub.add_response("batch_get_item", _batch_get_answer(table, [], [flag]))
        with pytest.raises(errors.TransientError, match="unprocessed"):
            store.evaluation_input(ref("0001"))
        stub.assert_no_pending_responses()


def test_keys_refused_batch_reads_fall_back_to_two_reads(
    aws: AwsStack, caplog: pytest.LogCaptureFixture
) -> None:
    """An IAM policy written for GetItem only: the jobs still read, with one warning.

    The refusal is AWS's documented AccessDeniedException, answered for the
    BatchGetItem alone by a botocore ``before-call`` handler (as botocore's
    Stubber does; moto checks no IAM policy by default); the GetItems are real.
    """
    client = aws.clients.dynamodb
    store = DynamoStore(client, aws.table_name)
    put_solution(client, aws.table_name, ref("0001"), [3])
    sent: list[str] = []

    def refuse(model: Any, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        sent.append(model.name)
        if model.name != "BatchGetItem":
            return None
        error = {
            "Code": "AccessDeniedException",
            "Message": "User: arn:aws:iam::123456789012:user/opthub is not authorized to"
            " perform: dynamodb:BatchGetItem",
        }
        return SimpleNamespace(status_code=400), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    hooks: Any = client.meta.events  # typed for handlers that return nothing
    hooks.register_first("before-call.dynamodb", refuse)
    try:
        with caplog.at_level(logging.WARNING):
            first = store.evaluation_input(ref("0001"))
            second = store.evaluation_input(ref("0002"))
    finally:
        hooks.unregister("before-call.dynamodb", refuse)
    assert first == JobInput(done=False, value=Solution([3]))
    assert second == JobInput(done=False, value=None)
    # Refused once, then GetItem only: no second refusal, no second warning.
    assert sent == ["BatchGetItem", "GetItem", "GetItem", "GetItem", "GetItem"]
    warnings = [r.getMessage() for r in caplog.records if "BatchGetItem" in r.getMessage()]
    assert len(warnings) == 1 and "dynamodb:BatchGetItem" in warnings[0]


def test_the_memory_store_needs_no_aws_library() -> None:
    """Item shapes and trial-state logic live apart from the boto3 adapter."""
    assert aws_libraries_imported_by("opthub_runner_admin.store.memory") == []
