"""The queue seam on Amazon SQS.

Every botocore error is translated here: a transport hiccup becomes
``errors.TransientError`` (the worker backs off and tries again), a queue
that does not exist or keys that AWS rejects become ``errors.FatalError``
with one line naming the ``config.yml`` key to fix, and a receipt that can no
longer be used becomes ``ReceiptExpired``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import botocore
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.validate import validate_parameters

from .. import errors
from ..aws.failures import (
    CREDENTIAL_CODES,
    credentials_error,
    describe,
    error_code,
    error_message,
    is_transient,
    missing_resource_error,
    transient_or_admin,
)
from .base import (
    FALLBACK_GROUP_ID,
    MAX_DELAY_SECONDS,
    MAX_RECEIVE_BATCH,
    MAX_VISIBILITY_SECONDS,
    MAX_WAIT_SECONDS,
    Message,
    MoveProgress,
    QueueInfo,
    QueueStats,
)
from .errors import ReceiptExpired
from .sqs_age import OldestAge

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import (
        MessageSystemAttributeNameType,
        QueueAttributeFilterType,
    )

    from .base import FleetQueue

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: First boto3/botocore release whose SQS model has ReceiveMessage's MessageSystemAttributeNames.
MIN_BOTO3 = "1.34.101"

#: Codes SQS answers with when the queue URL names no queue (query and JSON protocol).
_NO_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
#: Codes that say this receipt handle is of no use any more.
_RECEIPT_CODES = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
    }
)
#: What a receive asks SQS to report of each message.
_SYSTEM_ATTRIBUTES: list[MessageSystemAttributeNameType] = [
    "ApproximateReceiveCount",
    "MessageGroupId",
]
#: The three approximate counts of a queue.
_COUNT_ATTRIBUTES: tuple[QueueAttributeFilterType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
#: States of a message-move task that ended short of moving everything.
_STOPPED = frozenset({"CANCELLED", "FAILED"})
#: Which config keys hold a queue URL, for the message when none is given.
_DEFAULT_CONFIG_KEY = "evaluator_queue_url or scorer_queue_url"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, int(value)))


class SqsQueue:
    """A ``Queue`` over one SQS queue.

    ``config_key`` names the ``config.yml`` key the URL came from, so that a
    wrong URL is reported as the key the operator must fix.
    """

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        config_key: str | None = None,
        oldest_age: OldestAge | None = None,
    ):
        self._client = client
        self._url = queue_url
        self._config_key = config_key or _DEFAULT_CONFIG_KEY
        self._oldest_age = oldest_age
        # SQS names every FIFO queue "*.fifo"; ``check`` confirms it from the attribute.
        self._fifo = queue_url.endswith(".fifo")

    @property
    def url(self) -> str:
        """The queue's URL."""
        return self._url

    @property
    def fifo(self) -> bool:
        """Whether the queue is FIFO (from its URL, then its ``FifoQueue`` attribute)."""
        return self._fifo

    def check(self) -> QueueInfo:
        """Verify at start-up that the queue exists and the keys may read it; learn its kind."""
        self._check_receive_can_be_formed()
        with self._calling("read the attributes of"):
            attributes = self._client.get_queue_attributes(
                QueueUrl=self._url,
                AttributeNames=[
                    "VisibilityTimeout",
                    "RedrivePolicy",
                    "FifoQueue",
                    "MessageRetentionPeriod",
                ],
            ).get("Attributes", {})
        self._fifo = attributes.get("FifoQueue", "").lower() == "true" or self._url.endswith(
            ".fifo"
        )
        return QueueInfo(
            url=self._url,
            visibility_timeout=int(attributes.get("VisibilityTimeout", "30")),
            max_receive_count=_max_receive_count(attributes.get("RedrivePolicy")),
            fifo=self._fifo,
            retention_seconds=_retention(attributes),
        )

    def _check_receive_can_be_formed(self) -> None:
        """Validate a receive against botocore's own SQS model, without calling SQS.

        An older botocore lacks ``MessageSystemAttributeNames``: every receive
        would then fail on the client side while the runner looked ready.
        """
        params = self._receive_params(MAX_WAIT_SECONDS, MAX_VISIBILITY_SECONDS)
        try:
            shape = self._client.meta.service_model.operation_model("ReceiveMessage").input_shape
            if shape is not None:
                validate_parameters(params, shape)
        except ParamValidationError as exc:
            raise errors.SetupError(_too_old(exc)) from exc

    def _receive_params(
        self, wait_seconds: int, visibility_timeout: int, max_messages: int = 1
    ) -> dict[str, Any]:
        return {
            "QueueUrl": self._url,
            "MaxNumberOfMessages": _clamp(max_messages, 1, MAX_RECEIVE_BATCH),
            "WaitTimeSeconds": _clamp(wait_seconds, 0, MAX_WAIT_SECONDS),
            "VisibilityTimeout": _clamp(visibility_timeout, 0, MAX_VISIBILITY_SECONDS),
            "MessageSystemAttributeNames": _SYSTEM_ATTRIBUTES,
        }

    def receive(self, wait_seconds: int, visibility_timeout: int) -> Message | None:
        """Long-poll for one message, hidden from others for ``visibility_timeout`` seconds."""
        messages = self.receive_many(wait_seconds, visibility_timeout, 1)
        return messages[0] if messages else None

    def receive_many(
        self, wait_seconds: int, visibility_timeout: int, max_messages: int
    ) -> list[Message]:
        """Long-poll for up to ``max_messages`` messages (SQS allows 1..10 a call)."""
        with self._calling("receive from"):
            response = self._client.receive_message(
                **self._receive_params(wait_seconds, visibility_timeout, max_messages)
            )
        received_at = time.monotonic()
        return [_message(raw, received_at) for raw in response.get("Messages", [])]

    def delete(self, message: Message) -> None:
        """Remove the message for good."""
        with self._calling("delete a message from", message):
            self._client.delete_message(QueueUrl=self._url, ReceiptHandle=message.receipt)

    def extend(self, message: Message, seconds: int) -> None:
        """Keep the message hidden for ``seconds`` from now."""
        self._change_visibility(message, seconds, "extend the visibility of a message in")

    def make_visible(self, message: Message, delay: int = 0) -> None:
        """Make the message visible again after ``delay`` seconds (0: at once)."""
        self._change_visibility(message, delay, "make a message visible in")

    def resend(self, message: Message, body: str, delay: int) -> None:
        """Send a fresh copy (receive count 0) visible after ``delay``, then delete the original.

        SQS delays a message by at most 15 minutes, so longer delays are cut to
        that. A FIFO queue refuses any per-message delay: there the copy joins
        the end of the original's group at once, with a fresh deduplication id
        (the same body within five minutes would otherwise be dropped as a duplicate).
        """
        with self._calling("send a message to"):
            if self._fifo:
                self._client.send_message(
                    QueueUrl=self._url,
                    MessageBody=body,
                    MessageGroupId=message.group_id or FALLBACK_GROUP_ID,
                    MessageDeduplicationId=uuid.uuid4().hex,
                )
            else:
                self._client.send_message(
                    QueueUrl=self._url,
                    MessageBody=body,
                    DelaySeconds=_clamp(delay, 0, MAX_DELAY_SECONDS),
                )
        self.delete(message)

    # --- the fleet's view (FleetQueue) -----------------------------------------

    def stats(self) -> QueueStats:
        """SQS's approximate counts, the oldest message's age, and the dead-letter queue's count.

        The age comes from CloudWatch (``oldest_age``), where AWS publishes it
        once a minute: SQS has no such queue attribute.
        """
        attributes = self._attributes(*_COUNT_ATTRIBUTES, "RedrivePolicy", "MessageRetentionPeriod")
        dead_letter = self.dead_letter_queue(attributes.get("RedrivePolicy"))
        dead_letters = None
        if dead_letter is not None:
            counts = dead_letter._attributes(*_COUNT_ATTRIBUTES)
            dead_letters = sum(int(counts.get(name, "0")) for name in _COUNT_ATTRIBUTES)
        return QueueStats(
            url=self._url,
            visible=int(attributes.get("ApproximateNumberOfMessages", "0")),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
            delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", "0")),
            oldest_age=self._oldest_age(self._url) if self._oldest_age else None,
            dead_letter_url=dead_letter.url if dead_letter is not None else None,
            dead_letters=dead_letters,
            retention_seconds=_retention(attributes),
        )

    def dead_letter_queue(self, redrive_policy: str | None = None) -> SqsQueue | None:
        """The queue named by the RedrivePolicy's ``deadLetterTargetArn``, if there is one."""
        if redrive_policy is None:
            redrive_policy = self._attributes("RedrivePolicy").get("RedrivePolicy")
        arn = _dead_letter_arn(redrive_policy)
        if arn is None:
            return None
        # arn:aws:sqs:<region>:<account>:<name>
        parts = arn.split(":")
        if len(parts) != 6:
            raise errors.AdminError(f"SQS queue {self._url}: its RedrivePolicy names {arn!r}")
        with self._calling("find the dead-letter queue of"):
            url = self._client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
        return SqsQueue(
            self._client,
            url["QueueUrl"],
            config_key=f"the dead-letter queue of {self._config_key}",
            oldest_age=self._oldest_age,
        )

    def send(self, body: str, *, group_id: str | None = None) -> str:
        """Send ``body``, visible at once; a FIFO send keeps ``group_id`` with a fresh dedup id."""
        with self._calling("send a message to"):
            if self._fifo:
                response = self._client.send_message(
                    QueueUrl=self._url,
                    MessageBody=body,
                    MessageGroupId=group_id or FALLBACK_GROUP_ID,
                    MessageDeduplicationId=uuid.uuid4().hex,
                )
            else:
                response = self._client.send_message(QueueUrl=self._url, MessageBody=body)
        return response["MessageId"]

    def start_move(self, destination: FleetQueue) -> str | None:
        """StartMessageMoveTask from this (dead-letter) queue to ``destination``.

        None when the endpoint refuses it for any reason but rejected keys:
        moto answers HTTP 500 (it has no such task), other emulators an
        unknown action, and an IAM policy may allow sending and deleting but
        not the task. Moving one message at a time is then as safe, only slower.
        """
        try:
            source_arn = self.arn()
            destination_arn = _arn_of(destination)
            response = self._client.start_message_move_task(
                SourceArn=source_arn, DestinationArn=destination_arn
            )
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and error_code(exc) in CREDENTIAL_CODES:
                raise self._translate(exc, "start a message-move task on", None) from exc
            log.info(
                "the endpoint cannot start a message-move task from %s (%s)",
                self._url,
                describe(exc),
            )
            return None
        return response["TaskHandle"]

    def move_progress(self, handle: str) -> MoveProgress:
        """The task's state from ListMessageMoveTasks (most recent first).

        SQS reports the handle only while the task runs; once it ended, the
        most recent task of this source is the one ``start_move`` began.
        """
        with self._calling("list the message-move tasks of"):
            results = self._client.list_message_move_tasks(SourceArn=self.arn(), MaxResults=10).get(
                "Results", []
            )
        if not results:
            raise errors.AdminError(f"SQS lists no message-move task of {self._url}")
        task = next((r for r in results if r.get("TaskHandle") == handle), results[0])
        status = task.get("Status", "")
        to_move = task.get("ApproximateNumberOfMessagesToMove")
        return MoveProgress(
            moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=int(to_move) if to_move is not None else None,
            finished=status == "COMPLETED" or status in _STOPPED,
            failure=task.get("FailureReason") or (status if status in _STOPPED else None),
        )

    def arn(self) -> str:
        """The queue's ARN (its QueueArn attribute)."""
        return self._attributes("QueueArn")["QueueArn"]

    def _attributes(self, *names: QueueAttributeFilterType) -> dict[str, str]:
        with self._calling("read the attributes of"):
            attributes = self._client.get_queue_attributes(
                QueueUrl=self._url, AttributeNames=list(names)
            ).get("Attributes", {})
        return {str(key): value for key, value in attributes.items()}

    def _change_visibility(self, message: Message, seconds: int, action: str) -> None:
        with self._calling(action, message):
            self._client.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=message.receipt,
                VisibilityTimeout=_clamp(seconds, 0, MAX_VISIBILITY_SECONDS),
            )

    @contextmanager
    def _calling(self, action: str, message: Message | None = None) -> Iterator[None]:
        """Translate botocore's errors raised inside into the runner's own."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, action, message) from exc

    def _translate(
        self, exc: ClientError | BotoCoreError, action: str, message: Message | None
    ) -> errors.RunnerError:
        where = f"{action} SQS queue {self._url}"
        if isinstance(exc, ParamValidationError):
            return errors.SetupError(_too_old(exc))
        code = error_code(exc) if isinstance(exc, ClientError) else ""
        if code in _NO_QUEUE_CODES:
            return missing_resource_error(f"SQS queue {self._url}", self._config_key)
        fatal = credentials_error(exc, where)
        if fatal is not None:
            return fatal
        if message is not None and isinstance(exc, ClientError) and _is_receipt_error(exc):
            log.warning(
                "message %s is no longer held by this runner (%s): another consumer may have it",
                message.message_id,
                describe(exc),
            )
            return ReceiptExpired(f"cannot {where}: {describe(exc)}")
        return transient_or_admin(exc, where, transient=is_transient(exc))


def _message(raw: Any, received_at: float) -> Message:
    attributes = raw.get("Attributes", {})
    return Message(
        message_id=raw.get("MessageId", ""),
        body=raw.get("Body", ""),
        receipt=raw.get("ReceiptHandle", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        received_at=received_at,
        group_id=attributes.get("MessageGroupId"),
    )


def _retention(attributes: Mapping[Any, str]) -> int | None:
    """The MessageRetentionPeriod attribute in seconds (None when absent or unreadable)."""
    value = attributes.get("MessageRetentionPeriod")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _too_old(exc: ParamValidationError) -> str:
    """One line for a request this botocore cannot even form."""
    reason = " ".join(str(exc).split())
    return (
        f"botocore {botocore.__version__} cannot form the runner's SQS requests ({reason}):"
        f" upgrade it with pip install -U 'boto3>={MIN_BOTO3}' 'botocore>={MIN_BOTO3}'"
    )


def _is_receipt_error(exc: ClientError) -> bool:
    """Whether SQS refused the call because of the receipt handle or the 12-hour cap."""
    if error_code(exc) in _RECEIPT_CODES:
        return True
    if error_code(exc) != "InvalidParameterValue":
        return False
    text = error_message(exc).lower()
    return "receipthandle" in text or "receipt handle" in text or "43200" in text


def _arn_of(queue: FleetQueue) -> str:
    if not isinstance(queue, SqsQueue):
        raise TypeError(f"an SQS message-move task cannot reach {queue.url}")
    return queue.arn()


def _dead_letter_arn(redrive_policy: str | None) -> str | None:
    """The ``deadLetterTargetArn`` of a RedrivePolicy attribute (a JSON text), if any."""
    return _redrive_value(redrive_policy, "deadLetterTargetArn", str)


def _max_receive_count(redrive_policy: str | None) -> int | None:
    """The ``maxReceiveCount`` of a RedrivePolicy attribute (a JSON text), if any."""
    return _redrive_value(redrive_policy, "maxReceiveCount", int)


def _redrive_value(
    redrive_policy: str | None, name: str, convert: Callable[[Any], _T]
) -> _T | None:
    """One value of a RedrivePolicy attribute (a JSON text), as ``convert`` makes it, if any.

    A policy that cannot be read counts as none, with a warning: the runner
    only learns from it (the redrive limit, the dead-letter queue), and a
    malformed one must not stop it.
    """
    if not redrive_policy:
        return None
    try:
        return convert(json.loads(redrive_policy)[name])
    except (ValueError, KeyError, TypeError):
        log.warning("cannot read the queue's RedrivePolicy %r", redrive_policy)
        return None
