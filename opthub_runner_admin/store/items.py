"""The platform's item shapes in the OptHub table (contract: "Table"), as plain dicts.

Keys, the result and flag items, DynamoDB's size and nesting limits, and
reading items back into values. No AWS library is needed here: the DynamoDB
adapter and the in-memory store both build and read the very same items with
these functions, so that they cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .. import errors
from ..model import Evaluation, Failure, Score, Timing, TrialRef, table_match_id
from ..values import from_dynamo, replace_lone_surrogates, timestamp, to_dynamo, truncate_middle
from .base import Solution

#: Largest item DynamoDB stores, in its own way of counting bytes (400 KB).
MAX_ITEM_BYTES = 400 * 1024
#: Deepest level DynamoDB stores, counting the innermost value: a top-level list or map is
#: level 1, so at most 31 lists or maps wrap a scalar (AWS refuses 32 wraps; moto accepts
#: them, MiniStack refuses them as AWS does).
MAX_NESTING = 32

#: A raw item: attribute name to value (Decimal numbers, bool, None, str, list, dict).
Item = dict[str, Any]

SUCCESS = "Success"
FAILED = "Failed"
SOLUTIONS = "Solutions"
EVALUATIONS = "Evaluations"
SCORES = "Scores"


# --- keys and item shapes ---------------------------------------------------


def partition_key(kind: str, match_id: str, participant_id: str) -> str:
    """``<kind>#Match#<uuid>#<ParticipantID>``, the ``ID`` of a participant's items."""
    return f"{kind}#{table_match_id(match_id)}#{participant_id}"


def trial_key(kind: str, ref: TrialRef) -> Item:
    """The key whose sort key is the bare trial number: a Solution, or a result's flag."""
    return {"ID": partition_key(kind, ref.match_id, ref.participant_id), "Trial": ref.trial_no}


def success_key(kind: str, ref: TrialRef) -> Item:
    """The key of a trial's Success result in the ``kind`` partition."""
    return result_key(kind, ref, SUCCESS)


def result_key(kind: str, ref: TrialRef, status: str) -> Item:
    """The key of a trial's result of ``status`` (Success or Failed) in the ``kind`` partition."""
    return {
        "ID": partition_key(kind, ref.match_id, ref.participant_id),
        "Trial": f"{status}#{ref.trial_no}",
    }


def solution_item(
    ref: TrialRef, variable: Any, *, user_id: str, created_at: str | None = None
) -> Item:
    """A Solution item as the platform writes it (for the demo and tests)."""
    stored, _ = to_dynamo(variable, "variable")
    return {
        **trial_key(SOLUTIONS, ref),
        "TrialNo": ref.trial_no,
        "MatchID": table_match_id(ref.match_id),
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
        "MatchID": table_match_id(ref.match_id),
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
            if level >= MAX_NESTING:  # its contents would sit deeper than level 32
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
