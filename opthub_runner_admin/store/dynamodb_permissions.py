"""The runner's DynamoDB actions, tried on its table without reading or writing a trial."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..aws.permissions import denied_actions

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: A key no trial has (``DynamoStore.check`` reads it too), as DynamoDB takes it.
PROBE_KEY = {"ID": {"S": "opthub-runner#check"}, "Trial": {"S": "0"}}
#: A condition no item meets: the Put is authorized, then the transaction is cancelled.
NEVER = "attribute_exists(ID) AND attribute_not_exists(ID)"


def dynamodb_probes(client: DynamoDBClient, table: str) -> dict[str, Callable[[], object]]:
    """Each probed action's harmless call on ``table``."""
    key: dict[str, Any] = dict(PROBE_KEY)
    return {
        "dynamodb:BatchGetItem": lambda: client.batch_get_item(
            RequestItems={table: {"Keys": [key]}}
        ),
        "dynamodb:Query": lambda: client.query(
            TableName=table,
            KeyConditionExpression="ID = :id",
            ExpressionAttributeValues={":id": key["ID"]},
            Limit=1,
        ),
        "dynamodb:PutItem": lambda: client.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": key, "ConditionExpression": NEVER}}]
        ),
        "dynamodb:DescribeTable": lambda: client.describe_table(TableName=table),
    }


def refused_dynamodb_actions(client: DynamoDBClient, table: str) -> list[str]:
    """The probed actions AWS denies these keys on ``table``."""
    return denied_actions(dynamodb_probes(client, table), f"DynamoDB table {table!r}")
