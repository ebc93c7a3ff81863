"""deploy/aws: the target-tracking policy `opthub-runner fleet autoscaling` prints from config.yml.

Its TargetTrackingConfiguration is checked against botocore's own model of
PutScalingPolicy (the API's published shapes, shipped with botocore, so no
network is needed); the metric math is checked here (ids, the expression's
references, the queue of the config).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters
from click.testing import CliRunner

from opthub_runner_admin.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "aws" / "scaling-policy.json"
EXAMPLE = ROOT / "deploy" / "kubernetes" / "config.example.yml"
METRIC_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")


def _print(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["fleet", "autoscaling", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    template: dict[str, Any] = json.loads(result.stdout)
    return template


def _policy(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["BacklogPerInstance"]["Properties"]
    return properties


def check_against_the_api(template: dict[str, Any], group: str = "runners") -> None:
    """The policy as PutScalingPolicy takes it, validated by botocore's model of the API."""
    properties = json.loads(
        json.dumps(_policy(template)).replace('{"Ref": "AutoScalingGroupName"}', json.dumps(group))
    )
    operation = botocore.session.get_session().get_service_model("autoscaling")
    shape = operation.operation_model("PutScalingPolicy").input_shape
    assert shape is not None
    validate_parameters(
        {
            "AutoScalingGroupName": properties["AutoScalingGroupName"],
            "PolicyName": "backlog-per-instance",
            "PolicyType": properties["PolicyType"],
            "EstimatedInstanceWarmup": properties["EstimatedInstanceWarmup"],
            "TargetTrackingConfiguration": properties["TargetTrackingConfiguration"],
        },
        shape,
    )
    metrics = properties["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
    ids = {metric["Id"] for metric in metrics}
    assert all(METRIC_ID.fullmatch(metric_id) for metric_id in ids)
    [returned] = [metric for metric in metrics if metric["ReturnData"]]
    assert set(re.findall(r"[a-z_]+", returned["Expression"])) == ids - {returned["Id"]}


def _metric(template: dict[str, Any], metric_id: str) -> dict[str, Any]:
    configuration = _policy(template)["TargetTrackingConfiguration"]
    metrics = configuration["CustomizedMetricSpecification"]["Metrics"]
    [found] = [metric for metric in metrics if metric["Id"] == metric_id]
    stat: dict[str, Any] = found["MetricStat"]
    return stat


def test_the_shipped_policy_is_what_the_command_prints_from_the_example() -> None:
    printed = _print("--config", str(EXAMPLE))
    assert printed == json.loads(SHIPPED.read_text()), (
        "deploy/aws/scaling-policy.json is stale: opthub-runner fleet autoscaling"
        " --config deploy/kubernetes/config.example.yml > deploy/aws/scaling-policy.json"
    )
    check_against_the_api(printed)


def test_the_policy_follows_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/opthub-scores"
    config.write_text(
        yaml.safe_dump(
            {"region_name": "eu-west-1", "table_name": "t", "scorer_queue_url": url, "workers": 4}
        )
    )
    template = _print("--config", str(config), "--mode", "scorer", "--runners-per-instance", "2")
    check_against_the_api(template)
    assert _policy(template)["TargetTrackingConfiguration"]["TargetValue"] == 8.0
    for metric_id, name in (
        ("visible", "ApproximateNumberOfMessagesVisible"),
        ("in_flight", "ApproximateNumberOfMessagesNotVisible"),
    ):
        metric = _metric(template, metric_id)["Metric"]
        assert metric["MetricName"] == name
        assert metric["Dimensions"] == [{"Name": "QueueName", "Value": "opthub-scores"}]
    instances = _metric(template, "instances")["Metric"]
    assert instances["MetricName"] == "GroupInServiceInstances"


def test_the_api_check_refuses_a_wrong_field() -> None:
    template = json.loads(SHIPPED.read_text())
    _policy(template)["TargetTrackingConfiguration"]["TargetValue"] = "two"
    with pytest.raises(ParamValidationError):
        check_against_the_api(template)
