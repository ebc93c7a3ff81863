"""The runner's SQS and CloudWatch actions, tried on its queue without touching a message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..aws.permissions import denied_actions

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient

#: A receipt handle no message has: SQS authorizes the call, then answers ReceiptHandleIsInvalid.
PROBE_RECEIPT = "opthub-runner-permission-probe"


def sqs_probes(
    client: SQSClient, url: str, cloudwatch: CloudWatchClient | None = None
) -> dict[str, Callable[[], object]]:
    """Each probed action's harmless call on the queue at ``url``."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    probes: dict[str, Callable[[], object]] = {
        "sqs:DeleteMessage": lambda: client.delete_message(
            QueueUrl=url, ReceiptHandle=PROBE_RECEIPT
        ),
        "sqs:ChangeMessageVisibility": lambda: client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=PROBE_RECEIPT, VisibilityTimeout=0
        ),
        "sqs:GetQueueUrl": lambda: client.get_queue_url(QueueName=name),
    }
    if cloudwatch is not None:
        now = datetime.now(timezone.utc)
        probes["cloudwatch:GetMetricStatistics"] = lambda: cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": name}],
            StartTime=now - timedelta(minutes=5),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )
    return probes


def refused_sqs_actions(
    client: SQSClient, url: str, cloudwatch: CloudWatchClient | None = None
) -> list[str]:
    """The probed actions AWS denies these keys on the queue at ``url``."""
    return denied_actions(sqs_probes(client, url, cloudwatch), f"SQS queue {url}")
