"""``dlq redrive`` through SQS's own message-move task, on a stand-in for what moto lacks.

The requests are formed by the real botocore client (its SQS model checks
every parameter) and go over HTTP to ``tests.support.sqs_move_tasks``, which
answers as AWS documents. What this cannot show is AWS moving the messages:
the one-by-one way, which moto does run, is in ``test_queue_contract``.
"""

from __future__ import annotations

from typing import Any

import pytest

from opthub_runner_admin.errors import AdminError
from opthub_runner_admin.fleet.dead_letters import MoveFailed, redrive
from opthub_runner_admin.platform_side.emulators import local_clients
from opthub_runner_admin.queue.sqs import SqsQueue
from tests.support.sqs_move_tasks import ACCOUNT, REGION, move_task_endpoint


def _running(moved: int) -> dict[str, Any]:
    return {
        "TaskHandle": "task-handle-1",
        "Status": "RUNNING",
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": 3,
    }


#: Once ended, SQS lists the task without its handle.
_ENDED = {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 3,
          "ApproximateNumberOfMessagesToMove": 3}  # fmt: skip


def test_redrive_all_starts_the_task_and_follows_it_to_its_end() -> None:
    with move_task_endpoint([_running(0), _running(1), _ENDED]) as endpoint:
        clients = local_clients(endpoint.url, max_attempts=1)
        queue = SqsQueue(clients.sqs, endpoint.queue_url("evaluator"))
        dead_letter = SqsQueue(clients.sqs, endpoint.queue_url("evaluator-dlq"))
        lines: list[str] = []
        done = redrive(dead_letter, queue, limit=None, report=lines.append, sleep=lambda s: None)

    assert (done.moved, done.by_task) == (3, True)
    assert lines == [
        "message-move task task-handle-1 started",
        "message-move task: 0 of 3 messages moved",
        "message-move task: 1 of 3 messages moved",
        "message-move task: 3 of 3 messages moved",
    ]
    [start] = [body for action, body in endpoint.requests if action == "StartMessageMoveTask"]
    assert start == {
        "SourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:evaluator-dlq",
        "DestinationArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:evaluator",
    }


def test_a_failed_task_ends_the_command_with_its_reason() -> None:
    failed = {"Status": "FAILED", "ApproximateNumberOfMessagesMoved": 1,
              "ApproximateNumberOfMessagesToMove": 3,
              "FailureReason": "AWS.SimpleQueueService.NonExistentQueue"}  # fmt: skip
    with move_task_endpoint([failed]) as endpoint:
        clients = local_clients(endpoint.url, max_attempts=1)
        queue = SqsQueue(clients.sqs, endpoint.queue_url("evaluator"))
        dead_letter = SqsQueue(clients.sqs, endpoint.queue_url("evaluator-dlq"))
        with pytest.raises(MoveFailed, match="NonExistentQueue"):
            redrive(dead_letter, queue, limit=None, report=lambda line: None)


def test_with_max_the_task_is_not_used() -> None:
    """The task moves everything: a bounded redrive must go one by one instead."""
    with move_task_endpoint([_ENDED]) as endpoint:
        clients = local_clients(endpoint.url, max_attempts=1)
        queue = SqsQueue(clients.sqs, endpoint.queue_url("evaluator"))
        dead_letter = SqsQueue(clients.sqs, endpoint.queue_url("evaluator-dlq"))
        with pytest.raises(AdminError, match="InvalidAction"):  # the stand-in cannot receive
            redrive(dead_letter, queue, limit=2, report=lambda line: None)
    assert "StartMessageMoveTask" not in [action for action, _ in endpoint.requests]
    assert "ReceiveMessage" in [action for action, _ in endpoint.requests]
