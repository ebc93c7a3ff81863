"""What the platform does on its side of the contract: tables, queues, solutions, bodies.

The OptHub API creates the table and the queues, writes a Solution item and
sends a queue body for every submission, and reads the results back. The demo,
the tests and the benchmarks do the same through these functions, built from
the runner's own definitions (``store.items`` for keys and items,
``jobs.messages`` for bodies), so that a change to the contract is made once
and both sides follow it. Like the platform, this talks to AWS directly.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from ..jobs.messages import BODY_FIELDS
from ..model import TrialRef
from ..store.dynamodb import to_dynamodb
from ..store.items import solution_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType


def create_table(client: DynamoDBClient, name: str) -> None:
    """Create the OptHub table: string keys ``ID`` (partition) and ``Trial`` (sort)."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "ID", "AttributeType": "S"},
            {"AttributeName": "Trial", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "ID", "KeyType": "HASH"},
            {"AttributeName": "Trial", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


#: What the queues made here keep their messages: 14 days, the most SQS allows.
QUEUE_RETENTION_SECONDS = 14 * 86400


def dead_letter_queue_name(name: str, *, fifo: bool = False) -> str:
    """The name ``create_queue`` gives the dead-letter queue of queue ``name``."""
    return f"{name}-dlq" + (".fifo" if fifo else "")


def create_queue(
    client: SQSClient,
    name: str,
    *,
    fifo: bool = False,
    dead_letter_max_receives: int | None = None,
    retention_seconds: int | None = QUEUE_RETENTION_SECONDS,
) -> str:
    """Create a queue (``<name>.fifo`` with ``fifo``) and return its URL.

    It keeps messages ``retention_seconds`` (None: SQS's default of 4 days),
    14 days unless told: what docs/operating.md advises for a competition.

    With ``dead_letter_max_receives``, also create its dead-letter queue
    (``dead_letter_queue_name``, of the same kind) and a redrive policy that
    moves a message there after that many receives. A FIFO queue has no
    content-based deduplication: every send names its own id, as the
    platform's do.
    """
    attributes: dict[QueueAttributeNameType, str] = {"FifoQueue": "true"} if fifo else {}
    if dead_letter_max_receives is not None:
        dlq_url = client.create_queue(
            QueueName=dead_letter_queue_name(name, fifo=fifo), Attributes=dict(attributes)
        )["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(dead_letter_max_receives)}
        )
    if retention_seconds is not None:
        attributes["MessageRetentionPeriod"] = str(retention_seconds)
    queue_name = f"{name}.fifo" if fifo else name
    return client.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]


def job_body(ref: TrialRef) -> str:
    """The queue body the platform sends for ``ref`` (contract: "Queues")."""
    return json.dumps({key: getattr(ref, field) for key, field in BODY_FIELDS.items()})


def send_body(client: SQSClient, queue_url: str, body: str, *, group: str | None = None) -> str:
    """Send ``body`` as the platform does; return the message id.

    ``group``: the FIFO message group (the platform's is the participant), with
    a fresh deduplication id, so that two sends are two messages.
    """
    if group is None:
        return client.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
    return client.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageGroupId=group,
        MessageDeduplicationId=uuid.uuid4().hex,
    )["MessageId"]


def send_job(client: SQSClient, queue_url: str, ref: TrialRef, *, group: str | None = None) -> str:
    """Send the job for ``ref`` (``group`` on a FIFO queue); return the message id."""
    return send_body(client, queue_url, job_body(ref), group=group)


def put_solution(
    client: DynamoDBClient,
    table: str,
    ref: TrialRef,
    variable: Any,
    user_id: str = "demo-user",
) -> None:
    """Write a Solution item as the platform does (contract: "Solution")."""
    item = solution_item(ref, variable, user_id=user_id)
    client.put_item(TableName=table, Item=to_dynamodb(item))
