"""``opthub-runner status`` and ``dlq`` against a real moto server, through the real CLI.

moto differs from AWS in two ways that matter here, and the tests say so:
it publishes no CloudWatch metric for SQS (on AWS the age of the oldest
message is ``ApproximateAgeOfOldestMessage`` in namespace ``AWS/SQS``), so
the test puts that datapoint there itself; and it has no message-move task
(it answers StartMessageMoveTask with HTTP 500), so ``dlq redrive`` without
``--max`` takes the one-by-one way there, which the test checks it says.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from opthub_runner_admin.cli.main import main
from opthub_runner_admin.platform_side.contract import dead_letter_queue_name
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet(tmp_path: Path, aws: AwsStack) -> tuple[Path, str, str]:
    """A config whose evaluator queue has a dead-letter queue; (config, queue, its DLQ)."""
    queue = aws.new_queue("fleet", dead_letter_max_receives=3)
    name = queue.rsplit("/", 1)[-1]
    dlq = aws.clients.sqs.get_queue_url(QueueName=dead_letter_queue_name(name))["QueueUrl"]
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(aws.config(evaluator_queue_url=queue, log_level="WARNING")))
    config.chmod(0o600)
    return config, queue, dlq


def _body(trial: str) -> str:
    return json.dumps({"MatchID": "m-1", "ParticipantID": "alice", "TrialNo": trial})


def _run(*args: str) -> tuple[int, str]:
    """Exit code, and standard output (or standard error when the command failed)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.stderr


def _row(output: str, mode: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(mode + " "))


def test_status_shows_each_queue_s_counts_age_and_dead_letters(
    aws: AwsStack, fleet: tuple[Path, str, str]
) -> None:
    config, queue, dlq = fleet
    sqs = aws.clients.sqs
    for trial in ("0001", "0002", "0003"):
        sqs.send_message(QueueUrl=queue, MessageBody=_body(trial))
    sqs.send_message(QueueUrl=queue, MessageBody=_body("0004"), DelaySeconds=120)
    sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=120)
    sqs.send_message(QueueUrl=dlq, MessageBody=_body("0005"))
    sqs.send_message(QueueUrl=dlq, MessageBody=_body("0006"))
    # moto publishes no SQS metric: play AWS's part, as CloudWatch would have it.
    cloudwatch = aws.clients.session.client("cloudwatch", endpoint_url=aws.endpoint_url)
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue.rsplit("/", 1)[-1]}],
                "Value": 420.0,
                "Unit": "Seconds",
            }
        ],
    )

    code, output = _run("status", "--config", str(config))

    assert code == 0, output
    # queue, visible, in flight, delayed, oldest (2 words), left (2 words), dead letters:
    # the queue keeps messages 14 days, its oldest is 7 minutes old.
    assert _row(output, "evaluator") == [
        *("evaluator", "2", "1", "1", "7", "min", "14.0", "days", "2")
    ]
    assert _row(output, "scorer") == ["scorer", "0", "0", "0", "unknown", "-", "no", "DLQ"]
    assert "evaluator: SQS deletes a message 14.0 days after it was sent" in output
    assert f"evaluator dead letters: {dlq}" in output


def test_dlq_list_show_and_redrive_bounded_then_all(
    aws: AwsStack, fleet: tuple[Path, str, str]
) -> None:
    config, queue, dlq = fleet
    sqs = aws.clients.sqs
    ids = [
        sqs.send_message(QueueUrl=dlq, MessageBody=_body(f"000{n}"))["MessageId"]
        for n in range(1, 5)
    ]

    code, listed = _run("dlq", "list", "--config", str(config))
    assert code == 0, listed
    assert sorted(line.split()[0] for line in listed.splitlines()) == sorted(ids)
    assert "match m-1 participant alice trial 0001" in listed

    code, shown = _run("dlq", "show", ids[0], "--config", str(config))
    assert code == 0, shown
    assert f"message id: {ids[0]}" in shown and '"TrialNo": "0001"' in shown

    code, moved = _run("dlq", "redrive", "--config", str(config), "--max", "1")
    assert code == 0, moved
    assert [line for line in moved.splitlines() if line.startswith("moved ")] != []
    assert len([line for line in moved.splitlines() if line.startswith("moved ")]) == 1
    assert "1 messages back on" in moved and "(one by one)" in moved
    assert _count(aws, queue) == 1 and _count(aws, dlq) == 3

    code, moved = _run("dlq", "redrive", "--config", str(config))
    assert code == 0, moved
    assert "the endpoint has no message-move task" in moved  # moto: see the module's doc
    assert len([line for line in moved.splitlines() if line.startswith("moved ")]) == 3
    assert _count(aws, queue) == 4 and _count(aws, dlq) == 0
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = {m["Body"] for m in received["Messages"]}
    assert bodies == {_body(f"000{n}") for n in range(1, 5)}


def test_dlq_of_a_queue_without_redrive_policy_says_so_in_one_line(
    tmp_path: Path, aws: AwsStack
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(aws.config(log_level="WARNING")))
    config.chmod(0o600)
    code, output = _run("dlq", "list", "--config", str(config))
    assert code == 1
    assert output.strip().splitlines() == [
        f"Error: evaluator_queue_url ({aws.evaluator_queue_url}) has no dead-letter queue"
        " (no RedrivePolicy): there are no dead letters to see"
    ]
    quoted = " ".join((ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8").split())
    assert "has no dead-letter queue (no RedrivePolicy): there are no dead letters to see" in quoted


def test_dlq_show_of_an_unknown_id_names_the_command_that_lists_them(
    aws: AwsStack, fleet: tuple[Path, str, str]
) -> None:
    config, _, dlq = fleet
    unknown = str(uuid.uuid4())
    code, output = _run("dlq", "show", unknown, "--config", str(config))
    assert code == 1
    assert output.strip() == (
        f"Error: no message {unknown} in {dlq}: 'opthub-runner dlq list' shows the ids there"
    )


def _count(aws: AwsStack, url: str) -> int:
    return sum(queue_counts(aws, url))


def test_status_of_an_unreachable_endpoint_says_what_to_check_in_one_line(
    tmp_path: Path, aws: AwsStack
) -> None:
    config = tmp_path / "config.yml"
    unreachable = "http://127.0.0.1:9"
    config.write_text(
        yaml.safe_dump(
            aws.config(
                endpoint_url=unreachable,
                evaluator_queue_url=f"{unreachable}/123456789012/q",
                log_level="WARNING",
            )
        )
    )
    config.chmod(0o600)
    code, output = _run("status", "--config", str(config))
    assert code == 1
    [line] = output.strip().splitlines()
    assert line.startswith(f"Error: cannot read the attributes of SQS queue {unreachable}/")
    assert line.endswith("(check the network and endpoint_url, then run it again)")
