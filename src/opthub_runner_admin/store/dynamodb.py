"""The store seam on Amazon DynamoDB, and the item shapes of the platform contract.

The item builders and the trial-state logic are module functions shared with
``store.memory``: the in-memory store writes the very same items and answers
``trial_states`` with the very same code, so that it cannot drift from this one.

Every botocore error is translated here (``ClientError`` never leaves
``store/``): the flag item's condition becomes ``errors.AlreadyDone``, an item
DynamoDB cannot hold becomes ``errors.ResultTooLarge``, throttling and broken
connections become ``errors.TransientError``, and a missing table or rejected
keys become ``errors.FatalError`` naming the ``config.yml`` key to fix.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from .. import errors
from ..aws import credentials_problem, describe, error_code, error_message, is_transient
from ..model import Evaluation, Failure, HistoryEntry, Score, Timing, TrialRef
from ..values import from_dynamo, replace_lone_surrogates, timestamp, to_dynamo, truncate_middle
from .base import Solution, TrialState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PaginatorConfigTypeDef

#: Largest item DynamoDB stores, in its own way of counting bytes (400 KB).
MAX_ITEM_BYTES = 400 * 1024
#: Deepest nesting of lists and maps DynamoDB stores (a top-level list or map is level 1).
MAX_NESTING = 32

#: The condition that makes a result unique (contract: "the flag item").
FLAG_CONDITION = "attribute_not_exists(ID)"

#: A raw item: attribute name to value (Decimal numbers, bool, None, str, list, dict).
Item = dict[str, Any]
#: Reads the items of one partition whose sort key lies between two bounds (inclusive).
QueryFn = Callable[[str, str, str], list[Item]]

SUCCESS = "Success"
FAILED = "Failed"
SOLUTIONS = "Solutions"
EVALUATIONS = "Evaluations"
SCORES = "Scores"


# --- keys and item shapes ---------------------------------------------------


def partition_key(kind: str, match_id: str, participant_id: str) -> str:
    """``<kind>#Match#<uuid>#<ParticipantID>``, the ``ID`` of a participant's items."""
    return f"{kind}#Match#{match_id}#{participant_id}"


def trial_key(kind: str, ref: TrialRef) -> Item:
    """The key whose sort key is the bare trial number: a Solution, or a result's flag."""
    return {"ID": partition_key(kind, ref.match_id, ref.participant_id), "Trial": ref.trial_no}


def success_key(kind: str, ref: TrialRef) -> Item:
    """The key of a trial's Success result in the ``kind`` partition."""
    return {
        "ID": partition_key(kind, ref.match_id, ref.participant_id),
        "Trial": f"{SUCCESS}#{ref.trial_no}",
    }


def solution_item(
    ref: TrialRef, variable: Any, *, user_id: str, created_at: str | None = None
) -> Item:
    """A Solution item as the platform writes it (for the demo and tests)."""
    stored, _ = to_dynamo(variable, "variable")
    return {
        **trial_key(SOLUTIONS, ref),
        "TrialNo": ref.trial_no,
        "MatchID": f"Match#{ref.match_id}",
        "ParticipantID": ref.participant_id,
        "UserID": user_id,
        "CreatedAt": created_at or timestamp(),
        "ResourceType": "Solution",
        "Variable": stored,
    }


def evaluation_item(
    ref: TrialRef, result: Evaluation | Failure, timing: Timing
) -> tuple[Item, list[str]]:
    """The Evaluation item for ``result``, and notes on values changed to fit DynamoDB.

    Raises ``errors.ResultTooLarge`` when it nests too deep or is too large.
    """
    if isinstance(result, Failure):
        return _result_item(
            EVALUATIONS, "Evaluation", ref, failure=result, timing=timing, attributes={}
        ), []
    fields = {
        "Objective": result.objective,
        "Constraint": result.constraint,
        "Info": result.info if isinstance(result.info, Mapping) else {},
    }
    _check_nesting(ref, fields)
    attributes: Item = {}
    notes: list[str] = []
    for name, value in fields.items():
        attributes[name], changed = to_dynamo(value, name.lower())
        notes.extend(changed)
    attributes["Feasible"], changed = _feasible(result.feasible)
    notes.extend(changed)
    return _result_item(
        EVALUATIONS, "Evaluation", ref, failure=None, timing=timing, attributes=attributes
    ), notes


def score_item(ref: TrialRef, result: Score | Failure, timing: Timing) -> tuple[Item, list[str]]:
    """The Score item for ``result``, and notes on values changed to fit DynamoDB."""
    if isinstance(result, Failure):
        return _result_item(SCORES, "Score", ref, failure=result, timing=timing, attributes={}), []
    value, notes = to_dynamo(result.value, "score")
    return _result_item(
        SCORES, "Score", ref, failure=None, timing=timing, attributes={"Value": value}
    ), notes


def flag_item(item: Mapping[str, Any]) -> Item:
    """The flag that makes ``item`` the trial's only result (contract: "the flag item")."""
    return {"ID": item["ID"], "Trial": item["TrialNo"], "IgnoreStream": True}


def _result_item(
    kind: str,
    resource_type: str,
    ref: TrialRef,
    *,
    failure: Failure | None,
    timing: Timing,
    attributes: Item,
) -> Item:
    """The attributes every result item has, plus ``attributes``, checked against the size limit."""
    status = FAILED if failure is not None else SUCCESS
    item: Item = {
        "ID": partition_key(kind, ref.match_id, ref.participant_id),
        "Trial": f"{status}#{ref.trial_no}",
        "TrialNo": ref.trial_no,
        "ResourceType": resource_type,
        "MatchID": f"Match#{ref.match_id}",
        "ParticipantID": ref.participant_id,
        "CreatedAt": timestamp(),
        "StartedAt": timestamp(timing.started_at),
        "FinishedAt": timestamp(timing.finished_at),
        "Status": status,
        **attributes,
        "IgnoreStream": False,
    }
    if failure is not None:
        item["ErrorMessage"] = truncate_middle(replace_lone_surrogates(str(failure.message)))
        item["AdminErrorMessage"] = truncate_middle(
            replace_lone_surrogates(str(failure.admin_message))
        )
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise errors.ResultTooLarge(
            f"the {resource_type.lower()} of {ref} takes {size} bytes, "
            f"more than DynamoDB's {MAX_ITEM_BYTES}"
        )
    return item


def _feasible(value: Any) -> tuple[bool | None, list[str]]:
    """``feasible`` is a bool or null by contract; anything else is stored as null."""
    if value is None or isinstance(value, bool):
        return value, []
    return None, [f"feasible: {value!r} is not a boolean, stored as null"]


def _check_nesting(ref: TrialRef, fields: Mapping[str, Any]) -> None:
    """Refuse values nested deeper than DynamoDB allows, before anything recurses into them.

    Iterative on purpose: container output may nest deeper than Python's
    recursion limit, and that must become ``ResultTooLarge``, not a crash.
    """
    for name, value in fields.items():
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            current, level = stack.pop()
            if isinstance(current, Mapping):
                children: Any = current.values()
            elif isinstance(current, (list, tuple, set, frozenset)):
                children = current
            else:
                continue
            if level > MAX_NESTING:
                raise errors.ResultTooLarge(
                    f"{name} of {ref} nests lists and objects more than "
                    f"{MAX_NESTING} levels deep, which DynamoDB cannot store"
                )
            stack.extend((child, level + 1) for child in children)


def item_size(item: Mapping[str, Any]) -> int:
    """The item's size as DynamoDB counts it toward its 400 KB limit (documented formula)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, Decimal):
        # "1 byte per two significant digits, plus 1 byte"; zeros at either end do not count.
        # (Counted by hand: normalize() would round to the context's 28 digits.)
        digits = "".join(str(d) for d in value.as_tuple().digits).strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if isinstance(value, Mapping):
        return 3 + sum(1 + len(str(k).encode("utf-8")) + _value_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 3 + sum(1 + _value_size(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return len(str(value).encode("utf-8"))


# --- reading items back ------------------------------------------------------


def solution_from_item(item: Mapping[str, Any]) -> Solution:
    """The Solution of a Solution item (numbers back to int or float)."""
    return Solution(variable=from_dynamo(item.get("Variable")))


def evaluation_from_item(item: Mapping[str, Any]) -> Evaluation:
    """The Evaluation of a Success evaluation item (numbers back to int or float)."""
    info = from_dynamo(item.get("Info"))
    feasible = item.get("Feasible")
    return Evaluation(
        objective=from_dynamo(item.get("Objective")),
        constraint=from_dynamo(item.get("Constraint")),
        info=info if isinstance(info, dict) else {},
        feasible=feasible if isinstance(feasible, bool) else None,
    )


def score_from_item(item: Mapping[str, Any]) -> int | float:
    """The value of a Success score item; a score stored as null (it was NaN) reads as NaN."""
    value = from_dynamo(item.get("Value"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return value


# --- trial states -------------------------------------------------------------


def trial_bounds(after: str | None, before: str) -> tuple[str, str] | None:
    """The first and last trial number strictly between ``after`` and ``before``.

    Both are written with the width of ``before`` so that they compare as
    strings with the table's sort keys; None when no trial lies between.
    Raises ValueError for a trial number that is not decimal digits, which
    the contract rules out and a string range could not honour.
    """
    for trial_no in (after, before):
        if trial_no is not None and not _is_trial_no(trial_no):
            raise ValueError(f"trial number {trial_no!r} is not a zero-filled decimal")
    width = len(before)
    low = int(after) + 1 if after is not None else 0
    high = int(before) - 1
    if high < low:
        return None
    return str(low).zfill(width), str(high).zfill(width)


def _is_trial_no(text: str) -> bool:
    return text.isascii() and text.isdigit()


def collect_trial_states(
    query: QueryFn, match_id: str, participant_id: str, after: str | None, before: str
) -> list[TrialState]:
    """``Store.trial_states`` over any ``query``: the logic both stores share.

    Reads only the sort-key ranges of the trials between ``after`` and
    ``before`` (never the whole history), which keeps the scorer incremental.
    Score items are read only over the span of trials with a Success evaluation.
    """
    bounds = trial_bounds(after, before)
    if bounds is None:
        return []
    width = len(before)
    evaluations = partition_key(EVALUATIONS, match_id, participant_id)
    succeeded = {
        trial: evaluation_from_item(item)
        for trial, item in _by_trial(query, evaluations, SUCCESS, bounds, width).items()
    }
    failed = set(_by_trial(query, evaluations, FAILED, bounds, width))
    scores: dict[str, Item] = {}
    scored: set[str] = set()
    if succeeded:
        span = (min(succeeded), max(succeeded))
        score_partition = partition_key(SCORES, match_id, participant_id)
        scores = _by_trial(query, score_partition, SUCCESS, span, width)
        scored = set(scores) | set(_by_trial(query, score_partition, FAILED, span, width))
    states = []
    for trial in sorted(set(succeeded) | failed):
        evaluation = succeeded.get(trial)
        if evaluation is None:
            states.append(TrialState(trial, None, True))
        elif trial in scores:
            entry = HistoryEntry(trial, evaluation, score_from_item(scores[trial]))
            states.append(TrialState(trial, entry, True))
        else:
            states.append(TrialState(trial, None, trial in scored))
    return states


def _by_trial(
    query: QueryFn, partition: str, status: str, bounds: tuple[str, str], width: int
) -> dict[str, Item]:
    """Items ``<status>#<trial>`` of ``partition`` within ``bounds``, keyed by trial number.

    Trial numbers of another width (which a string range could let in) are dropped.
    """
    prefix = f"{status}#"
    found: dict[str, Item] = {}
    for item in query(partition, prefix + bounds[0], prefix + bounds[1]):
        trial = str(item.get("Trial", ""))[len(prefix) :]
        if len(trial) == width and _is_trial_no(trial):
            found[trial] = item
    return found


# --- the store ------------------------------------------------------------------

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

#: What a trial-state query needs of each item, to keep pages small.
_PROJECTION = "#trial, Objective, #constraint, Info, Feasible, #value"
_PROJECTION_NAMES = {"#trial": "Trial", "#constraint": "Constraint", "#value": "Value"}

#: How DynamoDB words a refusal of the item's size or nesting ("Item size has exceeded the
#: maximum allowed size", "Item size to update has exceeded ...", "Nesting Levels have
#: exceeded supported limits"); "Aggregated size of all range keys" is a key's limit.
_TOO_LARGE_REASON = re.compile(r"item size|nesting level", re.IGNORECASE)

#: Reasons inside a cancelled transaction that mean "try again later".
_TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


def _serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _SERIALIZER.serialize(value) for name, value in item.items()}


def _deserialize(item: Mapping[str, Any]) -> Item:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


class DynamoStore:
    """A ``Store`` over the OptHub table.

    ``items_read`` counts the items DynamoDB read for this store (query
    ScannedCount plus GetItem hits), for benchmarks of the incremental
    scorer. ``page_size`` caps a query page (tests use it to force pagination).
    """

    def __init__(
        self, client: DynamoDBClient, table_name: str, *, page_size: int | None = None
    ) -> None:
        self._client = client
        self._table = table_name
        self._page_size = page_size
        self._lock = threading.Lock()
        self.items_read = 0

    @property
    def table_name(self) -> str:
        """The table's name."""
        return self._table

    def check(self) -> None:
        """Verify at start-up that the table exists and the keys may read it.

        A GetItem of a key that never exists needs no permission beyond what
        the runner uses anyway (unlike DescribeTable).
        """
        with self._calling("read"):
            self._client.get_item(
                TableName=self._table,
                Key=_serialize({"ID": "opthub-runner#check", "Trial": "0"}),
            )

    def get_solution(self, ref: TrialRef) -> Solution | None:
        """The Solution item of ``ref`` (strongly consistent), or None."""
        item = self._get(trial_key(SOLUTIONS, ref), f"read the solution of {ref} from")
        return solution_from_item(item) if item is not None else None

    def is_evaluated(self, ref: TrialRef) -> bool:
        """Whether the evaluation flag of ``ref`` exists (strongly consistent)."""
        key = trial_key(EVALUATIONS, ref)
        return self._get(key, f"look for the evaluation of {ref} in") is not None

    def is_scored(self, ref: TrialRef) -> bool:
        """Whether the score flag of ``ref`` exists (strongly consistent)."""
        key = trial_key(SCORES, ref)
        return self._get(key, f"look for the score of {ref} in") is not None

    def get_evaluation(self, ref: TrialRef) -> Evaluation | None:
        """The Success evaluation of ``ref`` (strongly consistent), or None."""
        item = self._get(success_key(EVALUATIONS, ref), f"read the evaluation of {ref} from")
        return evaluation_from_item(item) if item is not None else None

    def put_evaluation(
        self, ref: TrialRef, result: Evaluation | Failure, timing: Timing
    ) -> list[str]:
        """Write the Evaluation item with its flag in one transaction; return the notes."""
        item, notes = evaluation_item(ref, result, timing)
        self._write(item, f"write the evaluation of {ref} to")
        return notes

    def put_score(self, ref: TrialRef, result: Score | Failure, timing: Timing) -> list[str]:
        """Write the Score item with its flag in one transaction; return the notes."""
        item, notes = score_item(ref, result, timing)
        self._write(item, f"write the score of {ref} to")
        return notes

    def trial_states(
        self, match_id: str, participant_id: str, after: str | None, before: str
    ) -> list[TrialState]:
        """Every trial strictly between ``after`` and ``before`` that has an evaluation."""
        return collect_trial_states(self._query, match_id, participant_id, after, before)

    # --- primitives -------------------------------------------------------------

    def _count(self, items: int) -> None:
        with self._lock:
            self.items_read += items

    def _get(self, key: Item, action: str) -> Item | None:
        with self._calling(action):
            response = self._client.get_item(
                TableName=self._table, Key=_serialize(key), ConsistentRead=True
            )
        if "Item" not in response:
            return None
        self._count(1)
        return _deserialize(response["Item"])

    def _write(self, item: Item, action: str) -> None:
        with self._calling(action, writing=True):
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._table, "Item": _serialize(item)}},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _serialize(flag_item(item)),
                            "ConditionExpression": FLAG_CONDITION,
                        }
                    },
                ]
            )

    def _query(self, partition: str, low: str, high: str) -> list[Item]:
        """Every item of ``partition`` with ``low <= Trial <= high``, across all pages."""
        config: PaginatorConfigTypeDef = {"PageSize": self._page_size} if self._page_size else {}
        items: list[Item] = []
        with self._calling("query"):
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="ID = :id AND #trial BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":id": {"S": partition},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
                ExpressionAttributeNames=_PROJECTION_NAMES,
                ProjectionExpression=_PROJECTION,
                ConsistentRead=True,
                PaginationConfig=config,
            )
            for page in pages:
                self._count(int(page.get("ScannedCount", page.get("Count", 0))))
                items.extend(_deserialize(raw) for raw in page.get("Items", []))
        return items

    @contextmanager
    def _calling(self, action: str, *, writing: bool = False) -> Iterator[None]:
        """Translate botocore's errors raised inside into the runner's own."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, action, writing) from exc

    def _translate(
        self, exc: ClientError | BotoCoreError, action: str, writing: bool
    ) -> errors.RunnerError:
        where = f"{action} DynamoDB table {self._table!r}"
        code = error_code(exc) if isinstance(exc, ClientError) else ""
        if code == "ResourceNotFoundException":
            return errors.FatalError(
                f"DynamoDB table {self._table!r} does not exist: check table_name "
                "(and region_name) in config.yml"
            )
        fatal = credentials_problem(exc, where)
        if fatal is not None:
            return errors.FatalError(fatal)
        if isinstance(exc, ClientError) and code == "TransactionCanceledException":
            return _cancelled(exc, where)
        if writing and isinstance(exc, ClientError) and code == "ValidationException":
            return _rejected(error_message(exc), f"cannot {where}: {describe(exc)}")
        if is_transient(exc):
            return errors.TransientError(f"cannot {where}: {describe(exc)}")
        return errors.AdminError(f"cannot {where}: {describe(exc)}")


def _cancellation_codes(exc: ClientError) -> list[str]:
    """The reason codes of a cancelled transaction, from the response or its message."""
    reasons = exc.response.get("CancellationReasons")
    if isinstance(reasons, list):
        return [str(reason.get("Code", "None")) for reason in reasons]
    found = re.search(r"\[([^\]]*)\]", error_message(exc))
    return [code.strip() for code in found.group(1).split(",")] if found else []


def _cancellation_messages(exc: ClientError) -> str:
    reasons = exc.response.get("CancellationReasons")
    if not isinstance(reasons, list):
        return ""
    return " ".join(str(reason.get("Message", "")) for reason in reasons)


def _rejected(reason: str, text: str) -> errors.ResultRejected:
    """Too large when DynamoDB says the item's size or nesting is over its limit; else rejected.

    Other refusals (a key over its own size limit, an invalid value) are not the
    result's size, and the participant must not be told it was too large.
    """
    if _TOO_LARGE_REASON.search(reason):
        return errors.ResultTooLarge(text)
    return errors.ResultRejected(text)


def _cancelled(exc: ClientError, where: str) -> errors.RunnerError:
    """What a cancelled result transaction means for the trial."""
    codes = _cancellation_codes(exc)
    if "ConditionalCheckFailed" in codes:
        return errors.AlreadyDone(f"cannot {where}: the trial already has a result")
    if "ValidationError" in codes:
        return _rejected(
            error_message(exc) + " " + _cancellation_messages(exc),
            f"cannot {where}: {describe(exc)}",
        )
    if _TRANSIENT_REASONS.intersection(codes):
        return errors.TransientError(f"cannot {where}: {describe(exc)}")
    return errors.AdminError(f"cannot {where}: {describe(exc)}")
