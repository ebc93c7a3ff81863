"""The store seam on Amazon DynamoDB: the boto3 adapter.

Item shapes live in ``store.items``, the trial-state logic in
``store.trial_states`` and the reads and writes built on them in
``store.item_store``; this module only moves those items in and out of
DynamoDB.

Every botocore error is translated here (``ClientError`` never leaves
``store/``): the flag item's condition becomes ``errors.AlreadyDone``, an item
DynamoDB cannot hold becomes ``errors.ResultTooLarge`` (or
``errors.ResultRejected`` when refused for another reason), throttling and
broken connections become ``errors.TransientError``, and a missing table or
rejected keys become ``errors.FatalError`` naming the ``config.yml`` key to fix.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from .. import errors
from ..aws.failures import (
    ACCESS_DENIED_CODES,
    credentials_error,
    describe,
    error_code,
    error_message,
    is_transient,
    missing_resource_error,
    transient_or_admin,
)
from ..model import Evaluation, TrialRef
from .base import InputT, JobInput, Solution
from .item_store import ItemStore
from .items import (
    EVALUATIONS,
    SCORES,
    SOLUTIONS,
    Item,
    evaluation_from_item,
    flag_item,
    result_key,
    solution_from_item,
    success_key,
    trial_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PaginatorConfigTypeDef

log = logging.getLogger(__name__)

#: The condition that makes a result unique (contract: "the flag item").
FLAG_CONDITION = "attribute_not_exists(ID)"
#: BatchGetItem requests for the keys DynamoDB left unprocessed, before the read fails.
UNPROCESSED_ATTEMPTS = 5
#: Seconds before the first such request again, doubled each time (AWS asks for a backoff).
UNPROCESSED_BACKOFF = 0.05


class _BatchReadRefused(Exception):
    """The keys may not BatchGetItem (``code``: AWS's error code): read with GetItem instead."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _PlainNumberDeserializer(TypeDeserializer):
    """boto3's deserializer, reading numbers in the notation DynamoDB answers with.

    DynamoDB answers a number in plain notation (1E+40 comes back as "1" and 40
    zeros); boto3 counts those zeros as significant digits and raises
    ``decimal.Rounded`` past 38 of them (boto3 issue 2500), so an objective of
    the contract's largest number could not be read back. moto echoes the
    notation it was sent and hid this; MiniStack answers as DynamoDB does.
    """

    def _deserialize_n(self, value: str) -> Decimal:
        return Decimal(value)


_SERIALIZER = TypeSerializer()
_DESERIALIZER = _PlainNumberDeserializer()

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


def to_dynamodb(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item of Python values as DynamoDB takes it (typed attribute values)."""
    return {name: _SERIALIZER.serialize(value) for name, value in item.items()}


def from_dynamodb(item: Mapping[str, Any]) -> Item:
    """An item as DynamoDB answers it (typed attribute values), as Python values."""
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


class DynamoStore(ItemStore):
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
        #: False once the keys were refused BatchGetItem: a job's two items are then two reads.
        self._batch_reads = True

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
                Key=to_dynamodb({"ID": "opthub-runner#check", "Trial": "0"}),
            )

    def key_schema(self) -> dict[tuple[str, str], str] | None:
        """The table's key as {(attribute, HASH|RANGE): type}, or None when it cannot be read.

        DescribeTable needs a permission the runner itself never uses: without
        it (or without the table) this is None, and ``check`` says which.
        """
        try:
            description: Any = self._client.describe_table(TableName=self._table)["Table"]
        except (ClientError, BotoCoreError):
            return None
        types = {
            a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]
        }
        return {
            (k["AttributeName"], k["KeyType"]): types.get(k["AttributeName"], "?")
            for k in description["KeySchema"]
        }

    def evaluation_input(self, ref: TrialRef) -> JobInput[Solution]:
        """The evaluation flag and the solution of ``ref``: one BatchGetItem, not two reads."""
        return self._job_input(
            trial_key(EVALUATIONS, ref),
            trial_key(SOLUTIONS, ref),
            solution_from_item,
            f"read the evaluation flag and the solution of {ref} from",
        )

    def score_input(self, ref: TrialRef) -> JobInput[Evaluation]:
        """The score flag and the Success evaluation of ``ref``, in one BatchGetItem."""
        return self._job_input(
            trial_key(SCORES, ref),
            success_key(EVALUATIONS, ref),
            evaluation_from_item,
            f"read the score flag and the evaluation of {ref} from",
        )

    # --- primitives -------------------------------------------------------------

    def _count(self, items: int) -> None:
        with self._lock:
            self.items_read += items

    def result(self, kind: str, ref: TrialRef, status: str) -> Item | None:
        """A trial's whole result item (Evaluations or Scores, Success or Failed), for display."""
        return self._get(result_key(kind, ref, status), "read a result")

    def _get(self, key: Item, action: str) -> Item | None:
        with self._calling(action):
            response = self._client.get_item(
                TableName=self._table, Key=to_dynamodb(key), ConsistentRead=True
            )
        if "Item" not in response:
            return None
        self._count(1)
        return from_dynamodb(response["Item"])

    def _job_input(
        self, flag: Item, key: Item, value_of: Callable[[Item], InputT], action: str
    ) -> JobInput[InputT]:
        flag_item, item = self._get_pair(flag, key, action)
        return JobInput(flag_item is not None, value_of(item) if item is not None else None)

    def _get_pair(self, first: Item, second: Item, action: str) -> tuple[Item | None, Item | None]:
        """Two items by key in one strongly consistent BatchGetItem (a round trip saved a job).

        DynamoDB may leave keys unprocessed (throttling) and asks for them to be
        requested again after a backoff: after ``UNPROCESSED_ATTEMPTS`` the
        read fails as throttling does, and the job's message comes back later.
        Keys whose IAM policy allows GetItem but not BatchGetItem (a policy
        written for an earlier runner) get two GetItems, with one warning.
        """
        if self._batch_reads:
            try:
                return self._batch_get_pair(first, second, action)
            except _BatchReadRefused as exc:
                with self._lock:
                    first_refusal, self._batch_reads = self._batch_reads, False
                if first_refusal:
                    log.warning(
                        "the keys may not BatchGetItem on table %s (%s): reading a job's"
                        " two items with GetItem instead, one more round trip a job;"
                        " allow dynamodb:BatchGetItem to save it",
                        self._table,
                        exc.code,
                    )
        return self._get(first, action), self._get(second, action)

    def _batch_get_pair(
        self, first: Item, second: Item, action: str
    ) -> tuple[Item | None, Item | None]:
        wanted = [(str(key["ID"]), str(key["Trial"])) for key in (first, second)]
        found: dict[tuple[str, str], Item] = {}
        pending = [to_dynamodb(first), to_dynamodb(second)]
        for attempt in range(UNPROCESSED_ATTEMPTS):
            if attempt:
                time.sleep(UNPROCESSED_BACKOFF * 2 ** (attempt - 1))
            with self._calling(action):
                try:
                    response = self._client.batch_get_item(
                        RequestItems={self._table: {"Keys": pending, "ConsistentRead": True}}
                    )
                except ClientError as exc:
                    if error_code(exc) in ACCESS_DENIED_CODES:
                        raise _BatchReadRefused(error_code(exc)) from exc
                    raise
            for raw in response.get("Responses", {}).get(self._table, []):
                item = from_dynamodb(raw)
                found[(str(item["ID"]), str(item["Trial"]))] = item
            unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
            pending = list(unprocessed["Keys"]) if unprocessed else []
            if not pending:
                break
        if pending:
            raise errors.TransientError(
                f"cannot {action} DynamoDB table {self._table!r}: {len(pending)} keys still"
                f" unprocessed after {UNPROCESSED_ATTEMPTS} requests (throttled)"
            )
        self._count(len(found))
        return found.get(wanted[0]), found.get(wanted[1])

    def _write(self, item: Item, what: str) -> None:
        with self._calling(f"write {what} to", writing=True):
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._table, "Item": to_dynamodb(item)}},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_dynamodb(flag_item(item)),
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
                items.extend(from_dynamodb(raw) for raw in page.get("Items", []))
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
            return missing_resource_error(f"DynamoDB table {self._table!r}", "table_name")
        fatal = credentials_error(exc, where)
        if fatal is not None:
            return fatal
        if isinstance(exc, ClientError) and code == "TransactionCanceledException":
            return _cancelled(exc, where)
        if writing and isinstance(exc, ClientError) and code == "ValidationException":
            return _rejected(error_message(exc), f"cannot {where}: {describe(exc)}")
        return transient_or_admin(exc, where, transient=is_transient(exc))


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
    return transient_or_admin(exc, where, transient=bool(_TRANSIENT_REASONS.intersection(codes)))
