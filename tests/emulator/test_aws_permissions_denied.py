"""A denied permission stops the runner's start (exit 78) and is doctor's cross, by name.

moto checks IAM policies when started with ``INITIAL_NO_AUTH_ACTION_COUNT``:
the first requests (the user, its policy and keys) go unchecked, every later
one is authorized against the user's policy. Where moto is more lenient than
AWS: it validates an SQS receipt handle before it authorizes the call, so the
SQS probes (a receipt handle that cannot exist) cannot be denied here; and it
names CloudWatch's actions ``monitoring:``, so the policy allows those too.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from opthub_runner_admin.cli.common import EXIT_CONFIG
from opthub_runner_admin.platform_side.config_files import match_entry
from opthub_runner_admin.platform_side.contract import create_queue, create_table
from opthub_runner_admin.runner.doctor import CROSS
from tests.e2e.test_api_e2e import env_for
from tests.e2e.test_doctor import doctor, line_of
from tests.emulator.test_permanent_errors import one_error_line
from tests.support.aws_fixtures import MotoServerFactory
from tests.support.e2e import run_cli

REGION = "ap-northeast-1"
#: Requests moto lets through unchecked: create_user, put_user_policy, create_access_key.
UNCHECKED = 3


def test_a_denied_batch_get_item_stops_the_start_and_is_doctors_cross(
    tmp_path: Path, moto_server_factory: MotoServerFactory
) -> None:
    server = moto_server_factory(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(UNCHECKED)})
    admin = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    iam = admin.client("iam", endpoint_url=server.endpoint_url)
    iam.create_user(UserName="runner")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:*", "dynamodb:*", "cloudwatch:*", "monitoring:*"],
                "Resource": "*",
            },
            {"Effect": "Deny", "Action": ["dynamodb:BatchGetItem"], "Resource": "*"},
        ],
    }
    iam.put_user_policy(UserName="runner", PolicyName="runner", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="runner")["AccessKey"]
    runner = boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=REGION,
    )
    sqs = runner.client("sqs", endpoint_url=server.endpoint_url)
    queue_url = create_queue(sqs, "evaluator")
    create_table(runner.client("dynamodb", endpoint_url=server.endpoint_url), "opthub")
    (tmp_path / "matches.yml").write_text(
        json.dumps({"3b7c0b1e-0000-4000-8000-00000000d0c9": match_entry("unused/image")})
    )
    config = tmp_path / "config.yml"
    config.write_text(
        json.dumps(
            {
                "endpoint_url": server.endpoint_url,
                "region_name": REGION,
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "table_name": "opthub",
                "evaluator_queue_url": queue_url,
                "matches_file": "matches.yml",
            }
        )
    )
    config.chmod(0o600)

    code, lines = doctor(config, env=env_for(tmp_path))
    line = line_of(lines, "AWS permissions")
    assert code == 1
    assert line.startswith(f"{CROSS} AWS permissions: the AWS keys may not dynamodb:BatchGetItem")
    assert line_of(lines, "table").startswith("\N{CHECK MARK}")  # GetItem alone is allowed

    result = run_cli("evaluator", config, env_for(tmp_path))
    assert result.returncode == EXIT_CONFIG
    assert "the AWS keys may not dynamodb:BatchGetItem (on table opthub)" in one_error_line(result)
