"""SqsQueue reads MessageRetentionPeriod and, with the age, the time the oldest message has."""

from __future__ import annotations

from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.queue.sqs import SqsQueue
from opthub_runner_admin.queue.sqs_age import OldestAge

KEPT = 3 * 86400


def test_stats_give_the_time_before_sqs_deletes_the_oldest_message(aws: AwsStack) -> None:
    url = aws.new_queue("retention", retention_seconds=KEPT)
    cloudwatch = aws.clients.session.client("cloudwatch", endpoint_url=aws.endpoint_url)
    queue = SqsQueue(aws.clients.sqs, url, oldest_age=OldestAge(client=cloudwatch))
    assert queue.check().retention_seconds == KEPT

    aws.clients.sqs.send_message(QueueUrl=url, MessageBody="{}")
    # moto publishes no SQS metric: play AWS's part, as CloudWatch would have it.
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": url.rsplit("/", 1)[-1]}],
                "Value": 3600.0,
                "Unit": "Seconds",
            }
        ],
    )
    stats = queue.stats()

    assert (stats.retention_seconds, stats.oldest_age) == (KEPT, 3600.0)
    assert stats.retention_left == KEPT - 3600.0
