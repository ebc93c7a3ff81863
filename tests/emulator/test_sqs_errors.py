"""How the AWS seams fail: one clear line for what the operator must fix, a retryable error
for an outage, never a crash or a leaked secret.

Outages and credential checks run on private moto servers, so that stopping
one never disturbs the session's shared server.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from opthub_runner_admin import errors
from opthub_runner_admin.aws.clients import aws_clients
from opthub_runner_admin.model import Evaluation, Timing, TrialRef
from opthub_runner_admin.platform_side.contract import create_queue, create_table
from opthub_runner_admin.platform_side.emulators import FAKE_KEY, REGION, MotoServer
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.queue.base import Message
from opthub_runner_admin.queue.errors import ReceiptExpired
from opthub_runner_admin.queue.sqs import SqsQueue
from opthub_runner_admin.runner.queue_warnings import queue_warnings
from opthub_runner_admin.store.dynamodb import DynamoStore
from tests.support.aws_fixtures import MotoServerFactory

#: A secret that must never show up in an error message.
SECRET = "wJalrXUtnFEMI-never-print-this"
REF = TrialRef("3b7c0b1e-0000-4000-8000-000000000002", "p-1", "0001")
TIMING = Timing(datetime.now(timezone.utc), datetime.now(timezone.utc))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, f"not one line: {text!r}"
    assert SECRET not in text
    return text


def test_a_missing_queue_is_fatal_and_names_the_url_and_the_key(aws: AwsStack) -> None:
    url = aws.evaluator_queue_url + "-missing"
    queue = SqsQueue(aws.clients.sqs, url, config_key="evaluator_queue_url")
    for call in (queue.check, lambda: queue.receive(wait_seconds=0, visibility_timeout=30)):
        with pytest.raises(errors.FatalError) as caught:
            call()
        text = _one_line(caught.value)
        assert url in text and "evaluator_queue_url" in text


def test_a_missing_queue_without_a_key_names_both_keys(aws: AwsStack) -> None:
    queue = SqsQueue(aws.clients.sqs, aws.scorer_queue_url + "-missing")
    with pytest.raises(errors.FatalError) as caught:
        queue.check()
    text = _one_line(caught.value)
    assert "evaluator_queue_url" in text and "scorer_queue_url" in text


def test_a_stopped_server_is_transient_and_the_queue_recovers(
    moto_server_factory: MotoServerFactory,
) -> None:
    server = moto_server_factory()
    clients = server.clients(max_attempts=1)
    name = f"outage-{uuid.uuid4().hex[:8]}"
    queue = SqsQueue(clients.sqs, create_queue(clients.sqs, name))
    clients.sqs.send_message(QueueUrl=queue.url, MessageBody="job")
    message = queue.receive(wait_seconds=1, visibility_timeout=30)
    assert message is not None
    server.stop()
    calls = (
        queue.check,
        lambda: queue.receive(wait_seconds=1, visibility_timeout=30),
        lambda: queue.extend(message, 60),
        lambda: queue.make_visible(message),
        lambda: queue.delete(message),
        lambda: queue.resend(message, "job", 0),
    )
    for call in calls:
        with pytest.raises(errors.TransientError):
            call()
    server.start()  # same port, fresh state: the platform recreates its queue
    create_queue(clients.sqs, name)
    assert queue.check().url == queue.url
    assert queue.receive(wait_seconds=0, visibility_timeout=30) is None


def test_an_outage_shorter_than_the_retries_is_absorbed(
    moto_server_factory: MotoServerFactory,
) -> None:
    """The clients' retries outlast a one-second outage: the call made during it succeeds.

    (A stateless call: a restarted moto server has forgotten every queue.)
    """
    server = moto_server_factory()
    clients = server.clients()
    server.stop()
    restarter = threading.Timer(1.0, server.start)
    restarter.start()
    try:
        assert clients.sqs.list_queues().get("QueueUrls", []) == []
        assert clients.dynamodb.list_tables()["TableNames"] == []
    finally:
        restarter.join()


def _rejecting_server(moto_server_factory: MotoServerFactory) -> MotoServer:
    """A moto server that checks keys against its (empty) IAM: every key is unknown."""
    return moto_server_factory(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})


def test_rejected_credentials_are_fatal_name_the_keys_and_hide_the_secret(
    moto_server_factory: MotoServerFactory,
) -> None:
    server = _rejecting_server(moto_server_factory)
    clients = aws_clients(
        region_name=REGION,
        endpoint_url=server.endpoint_url,
        access_key_id="AKIAEXAMPLEEXAMPLE",
        secret_access_key=SECRET,
        max_attempts=1,
    )
    url = f"{server.endpoint_url}/123456789012/evaluator"
    queue = SqsQueue(clients.sqs, url, config_key="evaluator_queue_url")
    store = DynamoStore(clients.dynamodb, "opthub")
    for call in (
        queue.check,
        lambda: queue.receive(wait_seconds=0, visibility_timeout=30),
        store.check,
        lambda: store.put_evaluation(REF, Evaluation(objective=1), TIMING),
    ):
        with pytest.raises(errors.FatalError) as caught:
            call()
        text = _one_line(caught.value)
        assert "access_key_id" in text and "secret_access_key" in text


def test_a_stopped_server_is_transient_for_the_store(
    moto_server_factory: MotoServerFactory,
) -> None:
    server = moto_server_factory()
    clients = server.clients(max_attempts=1)
    create_table(clients.dynamodb, "opthub")
    store = DynamoStore(clients.dynamodb, "opthub")
    store.put_evaluation(REF, Evaluation(objective=1), TIMING)
    server.stop()
    calls = (
        store.check,
        lambda: store.get_solution(REF),
        lambda: store.get_evaluation(REF),
        lambda: store.put_evaluation(REF, Evaluation(objective=2), TIMING),
        lambda: store.trial_states(REF.match_id, REF.participant_id, None, "0002"),
    )
    for call in calls:
        with pytest.raises(errors.TransientError):
            call()


def test_a_forged_receipt_on_a_live_queue_is_not_transient(aws: AwsStack) -> None:
    """A receipt SQS does not know is the runner's loss of the message, not an outage."""
    queue = SqsQueue(aws.clients.sqs, aws.evaluator_queue_url)
    forged = Message("id", "body", "forged-receipt", 1, 0.0)
    with pytest.raises(ReceiptExpired):
        queue.extend(forged, 30)


def test_no_credentials_anywhere_is_fatal_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(errors.FatalError) as caught:
        aws_clients(region_name=REGION)
    assert "access_key_id" in _one_line(caught.value)
    with pytest.raises(errors.FatalError) as caught:
        aws_clients(region_name=REGION, access_key_id="AKIAEXAMPLE")
    assert "secret_access_key" in _one_line(caught.value)
    with pytest.raises(errors.FatalError) as caught:
        aws_clients(region_name="", access_key_id="a", secret_access_key=SECRET)
    assert "region_name" in _one_line(caught.value)


def _client_with_an_old_sqs_model(tmp_path: Path, endpoint_url: str) -> Any:
    """A real botocore client whose SQS model predates ``MessageSystemAttributeNames``.

    botocore releases before 1.34.101 shipped such a model; the model file is
    edited rather than an old botocore installed, so that the test runs offline.
    """
    session = botocore.session.get_session()
    loader = session.get_component("data_loader")
    model = loader.load_service_model("sqs", "service-2")
    del model["shapes"]["ReceiveMessageRequest"]["members"]["MessageSystemAttributeNames"]
    folder = tmp_path / "models" / "sqs" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    loader.search_paths.insert(0, str(tmp_path / "models"))
    return session.create_client(
        "sqs",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=FAKE_KEY,
        aws_secret_access_key=FAKE_KEY,
    )


def test_a_botocore_that_cannot_form_a_receive_fails_at_start_in_one_line(
    tmp_path: Path, aws: AwsStack
) -> None:
    client = _client_with_an_old_sqs_model(tmp_path, aws.endpoint_url)
    queue = SqsQueue(client, aws.evaluator_queue_url)
    with pytest.raises(errors.FatalError) as caught:
        queue.check()
    message = str(caught.value)
    assert "botocore" in message and "MessageSystemAttributeNames" in message
    assert "pip install -U" in message and "\n" not in message
    with pytest.raises(errors.FatalError):  # and a receive is never retried as if it could pass
        queue.receive(0, 30)


@pytest.mark.parametrize(("max_receives", "warned"), [(3, True), (5, True), (10, False)])
def test_a_redrive_limit_within_the_runners_own_retries_is_warned_about(
    aws: AwsStack, max_receives: int, warned: bool
) -> None:
    url = aws.new_queue("redrive-warning", dead_letter_max_receives=max_receives)
    info = SqsQueue(aws.clients.sqs, url, config_key="evaluator_queue_url").check()

    lines = [w for w in queue_warnings(info, "evaluator_queue_url") if "maxReceiveCount" in w]
    assert bool(lines) is warned
    if warned:
        expected = f"its dead-letter queue takes a message after {max_receives} receives"
        assert lines[0].startswith(f"evaluator_queue_url: {expected}")
