"""Permanent errors end the start with one line and exit 78, which systemd does not retry.

A wrong password retried every 30 s can lock the administrator's account; a
queue name where a URL belongs fails the same way at every start. Each case
starts the real CLI as systemd does (no terminal: standard input closed)
against moto (SQS, DynamoDB, Cognito and its JWKS) and checks the exit code
that the unit's ``RestartPreventExitStatus`` lists, and the one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from opthub_runner_admin.aws.queue_urls import queue_url_problem
from opthub_runner_admin.cli.common import EXIT_CONFIG
from opthub_runner_admin.platform_side.opthub_api import OpthubApiServer
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts

from ..e2e.test_api_e2e import api_config, env_for
from ..support.api_fixtures import CognitoPool
from ..support.e2e import run_cli


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The run's only ``Error:`` line; no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def start(config: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli("evaluator", config, env_for(tmp_path, **env))


def test_a_wrong_password_exits_78(
    tmp_path: Path, aws: AwsStack, cognito_pool: CognitoPool, opthub_api: OpthubApiServer
) -> None:
    config = api_config(tmp_path, aws, cognito_pool, opthub_api)
    result = start(
        config, tmp_path, OPTHUB_USERNAME=cognito_pool.username, OPTHUB_PASSWORD="wrong-Passw0rd"
    )
    assert result.returncode == EXIT_CONFIG == 78
    line = one_error_line(result)
    assert line.startswith(f"Error: login to OptHub as '{cognito_pool.username}' failed")
    assert "check the username and password" in line
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)


def test_an_unknown_user_exits_78(
    tmp_path: Path, aws: AwsStack, cognito_pool: CognitoPool, opthub_api: OpthubApiServer
) -> None:
    config = api_config(tmp_path, aws, cognito_pool, opthub_api)
    result = start(config, tmp_path, OPTHUB_USERNAME="nobody-here", OPTHUB_PASSWORD="x-Passw0rd")
    assert result.returncode == EXIT_CONFIG
    assert one_error_line(result).startswith("Error: login to OptHub as 'nobody-here' failed")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"cognito_client_id": "no-such-client"}, "Error: Cognito refused to login"),
        # moto serves its JWKS for any pool id, so the token's issuer gives it away here;
        # Cognito answers 404 (test_auth_cognito: "has no signing keys", also exit 78).
        (
            {"cognito_user_pool_id": "ap-northeast-1_NoSuchPool"},
            "Error: the OptHub access token failed verification (it comes from another user pool)",
        ),
    ],
)
def test_an_unknown_user_pool_or_app_client_exits_78(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    override: dict[str, str],
    expected: str,
) -> None:
    config = api_config(tmp_path, aws, cognito_pool, opthub_api)
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**settings, **override}))
    result = start(
        config,
        tmp_path,
        OPTHUB_USERNAME=cognito_pool.username,
        OPTHUB_PASSWORD=cognito_pool.password,
    )
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert one_error_line(result).startswith(expected)


def test_an_empty_password_is_one_line_and_no_login(
    tmp_path: Path, aws: AwsStack, cognito_pool: CognitoPool, opthub_api: OpthubApiServer
) -> None:
    config = api_config(tmp_path, aws, cognito_pool, opthub_api)
    # As deploy/credentials.env.example leaves it until it is filled in.
    result = start(config, tmp_path, OPTHUB_USERNAME=cognito_pool.username, OPTHUB_PASSWORD="")
    assert result.returncode == EXIT_CONFIG
    line = one_error_line(result)
    assert line.startswith(
        "Error: no OptHub login (the prompt was closed): OPTHUB_PASSWORD is empty"
    )
    assert "logged in" not in result.stderr and "login to OptHub" not in result.stderr


def write(tmp_path: Path, aws: AwsStack, **overrides: Any) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(aws.config(matches_file="matches.yml", **overrides)))
    (tmp_path / "matches.yml").write_text("{}\n")
    return path


def test_a_queue_name_instead_of_its_url_exits_78_and_doctor_says_so(
    tmp_path: Path, aws: AwsStack
) -> None:
    config = write(tmp_path, aws, evaluator_queue_url="opthub-evaluator")
    result = start(config, tmp_path)
    assert result.returncode == EXIT_CONFIG
    line = one_error_line(result)
    assert line.startswith(f"Error: {config}: 'evaluator_queue_url' must be the queue's URL")
    assert "(this version takes the URL, not the queue's name)" in line

    doctor = subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env_for(tmp_path),
    )
    first = doctor.stdout.splitlines()[0]
    assert first.startswith("\N{BALLOT X} config:") and "must be the queue's URL" in first
    assert "check the network" not in doctor.stdout


def test_a_queue_of_another_region_exits_78(tmp_path: Path, aws: AwsStack) -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/opthub-evaluator"
    config = write(tmp_path, aws, evaluator_queue_url=url, region_name="ap-northeast-1")
    result = start(config, tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert one_error_line(result) == (
        f"Error: {config}: 'evaluator_queue_url' is a queue of region us-east-1 but"
        " 'region_name' is ap-northeast-1: set region_name to the queues' and the table's"
        " region (or fix the URL)"
    )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://sqs.ap-northeast-1.amazonaws.com/123456789012/evq", True),
        ("https://sqs.ap-northeast-1.amazonaws.com/123456789012/evq.fifo", True),
        ("https://ap-northeast-1.queue.amazonaws.com/123456789012/evq", True),
        ("http://127.0.0.1:5000/123456789012/evq", True),  # a local stack's own URL
        ("evq", False),
        ("sqs.ap-northeast-1.amazonaws.com/123456789012/evq", False),
        ("https://sqs.ap-northeast-1.amazonaws.com/evq", False),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/evq", False),
        ("https://vpce-0a1b-x.sqs.eu-west-1.vpce.amazonaws.com/123456789012/evq", False),
    ],
)
def test_queue_urls(url: str, ok: bool) -> None:
    problem = queue_url_problem("evaluator_queue_url", url, region_name="ap-northeast-1")
    assert (problem is None) is ok, problem
