"""Auto Scaling on moto: scale_in_protection (the instance found through IMDSv2), the policy.

moto is lenient where AWS is not: its SetInstanceProtection accepts an
instance that is not in the named group and does nothing (AWS answers
ValidationError), so the tests read the protection back from
DescribeAutoScalingInstances instead of trusting that the call returned.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest

from opthub_runner_admin.aws.autoscaling import autoscaling_client
from opthub_runner_admin.config.schema import Config
from opthub_runner_admin.errors import SetupError
from opthub_runner_admin.fleet.scaling_policy import (
    BacklogTarget,
    cloudformation,
    target_tracking_configuration,
)
from opthub_runner_admin.jobs.outcome import Done
from opthub_runner_admin.observe.events import NoEvents
from opthub_runner_admin.platform_side.emulators import REGION
from opthub_runner_admin.platform_side.runners import wait_for
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.runner.instance_hooks import instance_events
from tests.support.instance_metadata import MetadataServer, metadata_server
from tests.unit.test_progress_clock import _message

__all__ = ["metadata_server"]  # the fixture, for pytest


def _group_with_one_instance(client: Any) -> tuple[str, str]:
    name = f"opthub-runners-{uuid.uuid4().hex[:8]}"
    client.create_launch_configuration(
        LaunchConfigurationName=name, ImageId="ami-12c6146b", InstanceType="t3.micro"
    )
    client.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=name,
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=[f"{REGION}a"],
    )
    [instance] = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]["Instances"]
    return name, str(instance["InstanceId"])


def _protected(client: Any, instance_id: str) -> bool:
    [found] = client.describe_auto_scaling_instances(InstanceIds=[instance_id])[
        "AutoScalingInstances"
    ]
    return bool(found["ProtectedFromScaleIn"])


def _config(aws: AwsStack, metadata: MetadataServer) -> Config:
    settings = aws.config(scale_in_protection=True, instance_metadata_url=metadata.url)
    return Config(**settings)


def test_the_instance_is_protected_while_a_job_runs_and_not_when_idle(
    aws: AwsStack, metadata_server: MetadataServer
) -> None:
    client = autoscaling_client(aws.clients)
    _, instance_id = _group_with_one_instance(client)
    metadata_server.instance_id = instance_id
    # A previous run was killed while protected: the start lifts it.
    client.set_instance_protection(
        InstanceIds=[instance_id],
        AutoScalingGroupName=client.describe_auto_scaling_instances(InstanceIds=[instance_id])[
            "AutoScalingInstances"
        ][0]["AutoScalingGroupName"],
        ProtectedFromScaleIn=True,
    )
    with contextlib.ExitStack() as resources:
        events = instance_events(_config(aws, metadata_server), NoEvents(), resources)
        wait_for(lambda: not _protected(client, instance_id), 10, "the protection lifted at start")
        events.job_started(_message("0001"))
        events.job_started(_message("0002"))
        wait_for(lambda: _protected(client, instance_id), 10, "the protection on")
        events.job_finished(_message("0001"), Done("ok"), 1.0)
        assert _protected(client, instance_id)  # one job still runs
        events.job_finished(_message("0002"), Done("ok"), 1.0)
        wait_for(lambda: not _protected(client, instance_id), 10, "the protection off")
        events.job_started(_message("0003"))
        wait_for(lambda: _protected(client, instance_id), 10, "the protection on again")
    # The runner left with a job's protection on: closing lifts it.
    assert not _protected(client, instance_id)


def test_a_host_outside_any_group_is_told_at_start(
    aws: AwsStack, metadata_server: MetadataServer
) -> None:
    metadata_server.instance_id = "i-00000000000000000"
    with contextlib.ExitStack() as resources, pytest.raises(SetupError, match="no Auto Scaling"):
        instance_events(_config(aws, metadata_server), NoEvents(), resources)


def test_off_by_default_nothing_is_asked(aws: AwsStack, metadata_server: MetadataServer) -> None:
    events = NoEvents()
    with contextlib.ExitStack() as resources:
        assert instance_events(Config(**aws.config()), events, resources) is events
    assert metadata_server.reads == []


def test_the_printed_policy_is_taken_by_put_scaling_policy(aws: AwsStack) -> None:
    # moto stores a target-tracking policy without evaluating its metric math (AWS checks
    # the metrics exist); tests/unit/test_deploy_aws.py checks the math and the shapes.
    client = autoscaling_client(aws.clients)
    group, _ = _group_with_one_instance(client)
    target = BacklogTarget(queue_url=aws.evaluator_queue_url, target=2)
    template = cloudformation(target, mode="evaluator")
    properties = template["Resources"]["BacklogPerInstance"]["Properties"]
    client.put_scaling_policy(
        AutoScalingGroupName=group,
        PolicyName="backlog-per-instance",
        PolicyType=properties["PolicyType"],
        EstimatedInstanceWarmup=properties["EstimatedInstanceWarmup"],
        TargetTrackingConfiguration=target_tracking_configuration(target, group),
    )
    [policy] = client.describe_policies(AutoScalingGroupName=group)["ScalingPolicies"]
    configuration = policy["TargetTrackingConfiguration"]
    assert configuration["TargetValue"] == 2.0
    metrics = configuration["CustomizedMetricSpecification"]["Metrics"]
    assert [m["Id"] for m in metrics] == [
        "visible",
        "in_flight",
        "instances",
        "backlog_per_instance",
    ]
