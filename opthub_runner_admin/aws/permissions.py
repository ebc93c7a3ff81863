"""Every AWS action the package calls, in one list: the IAM policy a runner's keys need.

``tests/unit/test_aws_permissions.py`` reads every boto3 call under aws/,
queue/, store/ and fleet/ and fails when one is missing here, so that this
list, the policy in docs/operating.md and what ``doctor`` tries stay the calls
the code makes. ``probe`` says how the start checks (the runner's and
``doctor``'s) prove an action is allowed without changing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from .. import errors
from .failures import (
    ACCESS_DENIED_CODES,
    CREDENTIAL_CODES,
    credentials_error,
    describe,
    error_code,
)

#: Who needs the action: a running runner, or only the fleet commands (status, dlq).
User = Literal["runner", "fleet"]
#: How the start checks try it: ``check`` (the queue and table checks call it), ``probe`` (a
#: call that cannot change anything), ``none`` (no harmless call exists: receiving or
#: sending moves a message; the runner's first receive is the proof).
Probe = Literal["check", "probe", "none"]


@dataclass(frozen=True)
class Permission:
    """One IAM action, the API operations (boto3's names) that need it, and why."""

    action: str
    operations: tuple[str, ...]
    user: User
    probe: Probe
    why: str
    #: False: the runner works without it, with less to show (a warning says what).
    required: bool = True


PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "sqs:GetQueueAttributes",
        ("GetQueueAttributes",),
        "runner",
        "check",
        "the queue's kind, visibility, redrive and retention; the counts for status",
    ),
    Permission("sqs:ReceiveMessage", ("ReceiveMessage",), "runner", "none", "take a job"),
    Permission("sqs:DeleteMessage", ("DeleteMessage",), "runner", "probe", "remove a settled job"),
    Permission(
        "sqs:ChangeMessageVisibility",
        ("ChangeMessageVisibility",),
        "runner",
        "probe",
        "keep a running job hidden (heartbeat) or hand it back",
    ),
    Permission(
        "sqs:SendMessage",
        ("SendMessage",),
        "runner",
        "none",
        "put a job back as a fresh copy (a solution not yet there, a scorer waiting)",
    ),
    Permission(
        "sqs:GetQueueUrl",
        ("GetQueueUrl",),
        "runner",
        "probe",
        "find the dead-letter queue, for the dead letters on the status line and page",
        required=False,
    ),
    Permission(
        "cloudwatch:GetMetricStatistics",
        ("GetMetricStatistics",),
        "runner",
        "probe",
        "the age of the oldest message (AWS publishes it only in CloudWatch)",
        required=False,
    ),
    Permission("dynamodb:GetItem", ("GetItem",), "runner", "check", "read a job's items"),
    Permission(
        "dynamodb:BatchGetItem",
        ("BatchGetItem",),
        "runner",
        "probe",
        "read a job's two items in one request",
    ),
    Permission("dynamodb:Query", ("Query",), "runner", "probe", "the scorer's history"),
    Permission(
        "dynamodb:PutItem",
        ("TransactWriteItems",),  # IAM authorizes each Put of the transaction as PutItem
        "runner",
        "probe",
        "write a result and its flag item, in one transaction",
    ),
    Permission(
        "dynamodb:DescribeTable",
        ("DescribeTable",),
        "runner",
        "probe",
        "the table's key schema, checked at start",
        required=False,
    ),
    Permission(
        "sqs:StartMessageMoveTask",
        ("StartMessageMoveTask",),
        "fleet",
        "none",
        "`dlq redrive --all` (else messages are moved one by one)",
        required=False,
    ),
    Permission(
        "sqs:ListMessageMoveTasks",
        ("ListMessageMoveTasks",),
        "fleet",
        "none",
        "`dlq redrive --all`: the task's progress",
        required=False,
    ),
)

#: Calls that need no IAM permission: Cognito's user-pool login is an unsigned, public API.
UNSIGNED_OPERATIONS = frozenset({"InitiateAuth"})


def runner_actions(*, required: bool | None = None) -> list[Permission]:
    """The runner's permissions (all, or only the required or the optional ones)."""
    return [
        p
        for p in PERMISSIONS
        if p.user == "runner" and (required is None or p.required == required)
    ]


def refused(call: Callable[[], object]) -> bool:
    """Make a harmless ``call``: True when AWS denied it, False when it was authorized.

    Any answer but a denial means AWS authorized the call (IAM is evaluated
    before the request is): a probe is built to fail after that, on a receipt
    handle, key or condition that cannot exist. Other failures (keys
    rejected, AWS unreachable) are raised as they are, for the caller to
    translate.
    """
    try:
        call()
    except ClientError as exc:
        if error_code(exc) in ACCESS_DENIED_CODES:
            return True
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            return True
        if error_code(exc) in CREDENTIAL_CODES:  # the keys themselves: not one permission
            raise
    except BotoCoreError:
        raise
    return False


def denied_actions(probes: Mapping[str, Callable[[], object]], where: str) -> list[str]:
    """The actions of ``probes`` AWS denies; keys rejected or AWS unreachable raise ours.

    ``where`` names the resource for the error (``SQS queue <url>``).
    """
    optional = {p.action for p in PERMISSIONS if not p.required}
    denied = []
    for action, call in probes.items():
        try:
            if refused(call):
                denied.append(action)
        except (ClientError, BotoCoreError) as exc:
            if action in optional and not _keys_rejected(exc):
                continue  # an endpoint without it (a local stack's CloudWatch): not a denial
            attempt = f"try {action} on {where}"
            raise credentials_error(exc, attempt) or errors.TransientError(
                f"cannot {attempt}: {describe(exc)}"
            ) from exc
    return denied


def _keys_rejected(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in CREDENTIAL_CODES
