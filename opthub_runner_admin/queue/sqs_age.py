"""The age of a queue's oldest message, which SQS keeps in CloudWatch, not in the queue.

``GetQueueAttributes`` has no such attribute: AWS publishes
``ApproximateAgeOfOldestMessage`` (namespace ``AWS/SQS``, dimension
``QueueName``) to CloudWatch once a minute. moto publishes no SQS metric at
all, so against moto the age is unknown unless a test puts the datapoint
there itself; the fleet's view shows it as such rather than guessing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from ..aws.failures import ACCESS_DENIED_CODES, CREDENTIAL_CODES, describe, error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

log = logging.getLogger(__name__)

#: How far back to look for the latest datapoint (AWS publishes every minute, late).
LOOKBACK = timedelta(minutes=10)


class OldestAge:
    """Reads the latest ``ApproximateAgeOfOldestMessage`` of a queue, in seconds (None: unknown).

    A missing permission (``cloudwatch:GetMetricStatistics``) or an endpoint
    without CloudWatch makes the age unknown, logged once, never an error:
    the counts still matter more. After a refusal of the keys it stops asking
    (a runner samples every minute for weeks).
    """

    def __init__(self, *, client: CloudWatchClient) -> None:
        self._client = client
        self._warned = False
        self._refused = False

    def __call__(self, queue_url: str) -> float | None:
        if self._refused:
            return None
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        now = datetime.now(timezone.utc)
        try:
            response = self._client.get_metric_statistics(
                Namespace="AWS/SQS",
                MetricName="ApproximateAgeOfOldestMessage",
                Dimensions=[{"Name": "QueueName", "Value": name}],
                StartTime=now - LOOKBACK,
                EndTime=now + timedelta(minutes=1),
                Period=60,
                Statistics=["Maximum"],
            )
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and error_code(exc) in (
                ACCESS_DENIED_CODES | CREDENTIAL_CODES
            ):
                self._refused = True
            if not self._warned:
                self._warned = True
                log.warning(
                    "the age of the oldest message is unknown: CloudWatch cannot be read (%s);"
                    " allow cloudwatch:GetMetricStatistics to the keys of config.yml to see it",
                    describe(exc),
                )
            return None
        points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
        if not points or "Maximum" not in points[-1]:
            return None
        return float(points[-1]["Maximum"])
