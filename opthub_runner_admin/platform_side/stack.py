"""One slice of a local emulator: its clients, a fresh table and the two queues, then gone.

Each test (``tests/support/aws_fixtures.py``) and each benchmark run gets its
own table and queues on a shared server, uniquely named, and removes them
afterwards so that the server does not grow for the whole run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.clients import AwsClients
from ..store.dynamodb import from_dynamodb
from .contract import QUEUE_RETENTION_SECONDS, create_queue, create_table
from .emulators import FAKE_KEY, REGION, LocalServer


@dataclass(frozen=True)
class AwsStack:
    """One slice of an emulator: clients, a table and two queues."""

    clients: AwsClients
    endpoint_url: str
    table_name: str
    evaluator_queue_url: str
    scorer_queue_url: str
    region_name: str = REGION
    #: Which emulator serves it ("moto" or "ministack"), for the cases one gets wrong.
    emulator: str = "moto"

    def config(self, **overrides: Any) -> dict[str, Any]:
        """``config.yml`` keys pointing at this stack (fake keys), with ``overrides``."""
        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
            "access_key_id": FAKE_KEY,
            "secret_access_key": FAKE_KEY,
            "table_name": self.table_name,
            "evaluator_queue_url": self.evaluator_queue_url,
            "scorer_queue_url": self.scorer_queue_url,
        }
        return {**values, **overrides}

    def new_queue(
        self,
        name: str,
        *,
        fifo: bool = False,
        dead_letter_max_receives: int | None = None,
        retention_seconds: int | None = QUEUE_RETENTION_SECONDS,
    ) -> str:
        """Create one more queue, uniquely named after ``name``; return its URL."""
        unique = f"{name}-{uuid.uuid4().hex[:10]}"
        return create_queue(
            self.clients.sqs,
            unique,
            fifo=fifo,
            dead_letter_max_receives=dead_letter_max_receives,
            retention_seconds=retention_seconds,
        )


@contextlib.contextmanager
def stack_on(server: LocalServer) -> Iterator[AwsStack]:
    """A fresh table and evaluator/scorer queues on ``server``, removed afterwards."""
    clients = server.clients()
    suffix = uuid.uuid4().hex[:10]
    table = f"opthub-{suffix}"
    create_table(clients.dynamodb, table)
    stack = AwsStack(
        clients=clients,
        endpoint_url=server.endpoint_url,
        table_name=table,
        evaluator_queue_url=create_queue(clients.sqs, f"evaluator-{suffix}"),
        scorer_queue_url=create_queue(clients.sqs, f"scorer-{suffix}"),
        emulator=server.name,
    )
    yield stack
    _remove(stack)


def _remove(stack: AwsStack) -> None:
    """Free the stack's resources so the shared server does not grow for the whole run."""
    try:
        stack.clients.dynamodb.delete_table(TableName=stack.table_name)
        for url in (stack.evaluator_queue_url, stack.scorer_queue_url):
            stack.clients.sqs.delete_queue(QueueUrl=url)
    except (ClientError, BotoCoreError):
        pass  # already gone (the test deleted them): nothing left to free


def scan_results(aws: AwsStack, resource_type: str) -> list[dict[str, Any]]:
    """Every result item (not flags) of one resource type in the stack's table."""
    found: list[dict[str, Any]] = []
    pages = aws.clients.dynamodb.get_paginator("scan").paginate(
        TableName=aws.table_name,
        FilterExpression="ResourceType = :type",
        ExpressionAttributeValues={":type": {"S": resource_type}},
        ConsistentRead=True,
    )
    for page in pages:
        found.extend(from_dynamodb(raw) for raw in page.get("Items", []))
    return found


def queue_counts(aws: AwsStack, url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed) as SQS reports them."""
    attributes = aws.clients.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        int(attributes["ApproximateNumberOfMessagesDelayed"]),
    )
