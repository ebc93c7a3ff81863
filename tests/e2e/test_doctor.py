"""``opthub-runner doctor`` against a healthy local stack and against each broken part.

The real CLI runs as a subprocess against a real moto server and the real
Docker daemon; each broken part is broken for real (a stopped server, a queue
that does not exist, a table keyed otherwise, a Docker socket nobody serves).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.runner.doctor import CROSS, TICK
from tests.e2e.test_api_e2e import api_config, env_for
from tests.support.api_fixtures import CognitoPool
from tests.support.aws_fixtures import MotoServerFactory
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ImageFactory

MATCH = "3b7c0b1e-0000-4000-8000-00000000d0c7"
CRASH_SCRIPT = 'echo "no result here" >&2\nexit 4\n'


def doctor(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "doctor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback (most recent call last)" not in result.stderr, result.stderr
    return result.returncode, result.stdout.splitlines()


def line_of(lines: list[str], name: str) -> str:
    found = [line for line in lines if line[2:].startswith(f"{name}:")]
    assert len(found) == 1, (name, lines)
    return found[0]


def healthy_config(
    tmp_path: Path, aws: AwsStack, sphere_image: str, best_so_far_image: str, **changes: Any
) -> Path:
    return write_config(
        tmp_path, aws, {MATCH: match_entry(sphere_image, best_so_far_image)}, **changes
    )


def test_a_healthy_setup_passes_every_check(
    tmp_path: Path, aws: AwsStack, sphere_image: str, best_so_far_image: str
) -> None:
    dlq_url = aws.new_queue("doctor-redrive", dead_letter_max_receives=10)
    config = healthy_config(
        tmp_path, aws, sphere_image, best_so_far_image, scorer_queue_url=dlq_url
    )
    config.chmod(0o600)  # it holds the emulator's keys: a readable one is a warning

    code, lines = doctor(config, "--match", MATCH, "--solution", "[1, 2]")

    assert code == 0, lines
    assert all(line.startswith(TICK) for line in lines), lines
    evaluator = line_of(lines, "evaluator queue")
    assert "standard, visibility timeout 30 s, no dead-letter queue" in evaluator
    assert "dead-letter queue after 10 receives, keeps messages 14.0 days" in line_of(
        lines, "scorer queue"
    )
    assert "keyed ID/Trial (strings)" in line_of(lines, "table")
    assert "not needed" in line_of(lines, "login")
    assert '"objective": 5' in line_of(lines, "problem image on [1, 2]")
    assert line_of(lines, f"indicator image {best_so_far_image}")
    assert '"score": 5' in line_of(lines, "indicator image on the sample evaluation")


def test_an_invalid_config_is_the_first_cross(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"region_name": "r", "table_name": "t", "timeout": "x"}))

    code, lines = doctor(config)

    assert code == 1
    assert lines == [
        f"{CROSS} config: {config}: 'timeout' must be a whole number, got 'x'"
        " -> fix: fix the file (see config.default.yml)"
    ]


def test_a_stopped_aws_endpoint_crosses_queues_and_table(
    tmp_path: Path, aws: AwsStack, moto_server_factory: MotoServerFactory
) -> None:
    server = moto_server_factory()
    config = write_config(tmp_path, aws, {}, endpoint_url=server.endpoint_url)
    server.stop()

    code, lines = doctor(config)

    assert code == 1
    assert line_of(lines, "Docker").startswith(TICK)
    for name in ("evaluator queue", "scorer queue", "table"):
        line = line_of(lines, name)
        assert line.startswith(CROSS), line
        assert "-> fix:" in line


def test_a_missing_queue_is_named(tmp_path: Path, aws: AwsStack) -> None:
    missing = aws.evaluator_queue_url.rsplit("/", 1)[0] + f"/gone-{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path, aws, {}, evaluator_queue_url=missing)

    code, lines = doctor(config)

    assert code == 1
    evaluator = line_of(lines, "evaluator queue")
    assert evaluator.startswith(CROSS)
    assert "check 'evaluator_queue_url'" in evaluator
    assert line_of(lines, "scorer queue").startswith(TICK)


def test_a_table_with_another_key_schema_is_named(tmp_path: Path, aws: AwsStack) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    aws.clients.dynamodb.create_table(
        TableName=other,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        config = write_config(tmp_path, aws, {}, table_name=other)
        code, lines = doctor(config)
    finally:
        aws.clients.dynamodb.delete_table(TableName=other)

    assert code == 1
    table = line_of(lines, "table")
    assert table.startswith(CROSS)
    assert "is keyed pk (HASH, S); expected ID (HASH, S) and Trial (RANGE, S)" in table


def test_docker_unreachable_is_a_cross_and_skips_the_images(
    tmp_path: Path, aws: AwsStack, sphere_image: str, best_so_far_image: str
) -> None:
    config = healthy_config(tmp_path, aws, sphere_image, best_so_far_image)
    dead = tmp_path / "dead.sock"

    code, lines = doctor(config, "--match", MATCH, env={"DOCKER_HOST": f"unix://{dead}"})

    assert code == 1
    docker_line = line_of(lines, "Docker")
    assert docker_line.startswith(CROSS)
    assert "Unable to communicate with Docker" in docker_line
    assert line_of(lines, "images").startswith(CROSS)
    assert line_of(lines, "table").startswith(TICK)


def test_an_image_that_does_not_answer_is_a_cross(
    tmp_path: Path, aws: AwsStack, image_factory: ImageFactory, best_so_far_image: str
) -> None:
    crash = image_factory(f"{TEST_IMAGE_PREFIX}doctor-crash:latest", CRASH_SCRIPT)
    config = write_config(tmp_path, aws, {MATCH: match_entry(crash, best_so_far_image)})

    code, lines = doctor(config, "--match", MATCH, "--solution", "[1]")

    assert code == 1
    sample = line_of(lines, "problem image on [1]")
    assert sample.startswith(CROSS)
    assert "printed no result" in sample


def test_an_unknown_match_is_a_cross(
    tmp_path: Path, aws: AwsStack, sphere_image: str, best_so_far_image: str
) -> None:
    config = healthy_config(tmp_path, aws, sphere_image, best_so_far_image)
    other = "3b7c0b1e-0000-4000-8000-0000000000ff"

    code, lines = doctor(config, "--match", other)

    assert code == 1
    assert line_of(lines, f"match {other}").startswith(CROSS)


def test_login_and_api_are_checked_through_cognito_and_graphql(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    sphere_image: str,
    best_so_far_image: str,
) -> None:
    match = str(uuid.uuid4())
    opthub_api.add_match(
        match, FakeMatch(problem_image=sphere_image, indicator_image=best_so_far_image)
    )
    config = api_config(tmp_path, aws, cognito_pool, opthub_api)
    good = env_for(
        tmp_path, OPTHUB_USERNAME=cognito_pool.username, OPTHUB_PASSWORD=cognito_pool.password
    )
    # Another home: no saved login to resume.
    bad = env_for(
        tmp_path / "elsewhere", OPTHUB_USERNAME=cognito_pool.username, OPTHUB_PASSWORD="wrong-pw1"
    )

    code, lines = doctor(config, "--match", match, "--solution", "[3]", env=good)
    bad_code, bad_lines = doctor(config, env=bad)

    assert code == 0, lines
    assert f"logged in as {cognito_pool.username}" in line_of(lines, "login")
    assert f"{opthub_api.url} answered" in line_of(lines, "API")
    assert '"objective": 9' in line_of(lines, "problem image on [3]")
    assert bad_code == 1
    assert line_of(bad_lines, "login").startswith(CROSS)
    assert "not tried: login failed" in line_of(bad_lines, "API")
    assert "wrong-pw1" not in "\n".join(bad_lines)
