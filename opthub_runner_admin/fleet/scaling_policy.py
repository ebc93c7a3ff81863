"""EC2 Auto Scaling's target tracking on backlog per instance, for one mode's queue.

The metric is what AWS recommends for a queue-fed group: the queue's
messages, waiting and in flight (ApproximateNumberOfMessagesVisible +
ApproximateNumberOfMessagesNotVisible), divided by the group's in-service
instances (GroupInServiceInstances, which needs the group's metrics
collection on). Counting in-flight messages keeps a group busy with long
jobs from scaling in while its queue looks empty. The target is the messages
one instance takes at once: its runners' ``workers``.

What the engine cannot do: the metric divides by the instances in service,
so a group at zero has no value to track; keep MinSize at 1 (or scale from
zero with a step policy on the queue's own alarm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Seconds a new instance needs before its runners take jobs (boot, Docker, login, pulls).
WARMUP_SECONDS = 300


@dataclass(frozen=True)
class BacklogTarget:
    queue_url: str
    #: Messages per instance: ``workers`` times the runner processes on each instance.
    target: int
    warmup_seconds: int = WARMUP_SECONDS

    @property
    def queue_name(self) -> str:
        return self.queue_url.rstrip("/").rsplit("/", maxsplit=1)[-1]


def _queue_metric(metric_id: str, name: str, queue: str) -> dict[str, Any]:
    return {
        "Id": metric_id,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/SQS",
                "MetricName": name,
                "Dimensions": [{"Name": "QueueName", "Value": queue}],
            },
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


def target_tracking_configuration(target: BacklogTarget, group: Any) -> dict[str, Any]:
    """PutScalingPolicy's TargetTrackingConfiguration; ``group``: a name or a CloudFormation Ref."""
    return {
        "TargetValue": float(target.target),
        "CustomizedMetricSpecification": {
            "Metrics": [
                _queue_metric("visible", "ApproximateNumberOfMessagesVisible", target.queue_name),
                _queue_metric(
                    "in_flight", "ApproximateNumberOfMessagesNotVisible", target.queue_name
                ),
                {
                    "Id": "instances",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/AutoScaling",
                            "MetricName": "GroupInServiceInstances",
                            "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
                        },
                        "Stat": "Average",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "backlog_per_instance",
                    "Expression": "(visible + in_flight) / instances",
                    "Label": "messages waiting or in flight per in-service instance",
                    "ReturnData": True,
                },
            ]
        },
    }


def cloudformation(target: BacklogTarget, *, mode: str) -> dict[str, Any]:
    """A CloudFormation template holding the policy, the group's name as a parameter."""
    group = {"Ref": "AutoScalingGroupName"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            f"opthub-runner {mode}s: target tracking on backlog per instance of {target.queue_name}"
        ),
        "Parameters": {
            "AutoScalingGroupName": {
                "Type": "String",
                "Description": "The runners' group; its metrics collection must be on"
                " (GroupInServiceInstances).",
            }
        },
        "Resources": {
            "BacklogPerInstance": {
                "Type": "AWS::AutoScaling::ScalingPolicy",
                "Properties": {
                    "AutoScalingGroupName": group,
                    "PolicyType": "TargetTrackingScaling",
                    "EstimatedInstanceWarmup": target.warmup_seconds,
                    "TargetTrackingConfiguration": target_tracking_configuration(target, group),
                },
            }
        },
    }
