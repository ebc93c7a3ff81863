"""The scorer end to end: real moto server, real Docker, the history as the image saw it."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import docker

from opthub_runner_admin.model import Evaluation, Failure, Score, Timing, TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import send_job
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from opthub_runner_admin.store.dynamodb import DynamoStore

from ..support.aws_fixtures import on_each_emulator
from ..support.docker_fixtures import ImageFactory, containers_labelled
from ..support.e2e import make_worker, result_item, run_cli

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
TIMING = Timing(NOW, NOW)


def setup(tmp_path: Path, aws: AwsStack, indicator: str, **overrides: Any) -> tuple[str, Path]:
    match = str(uuid.uuid4())
    config = write_config(
        tmp_path, aws, {match: match_entry("opthub-test/unused:1", indicator)}, **overrides
    )
    return match, config


def evaluated(
    aws: AwsStack, match: str, n: int, objective: Any, *, info: Any = None, participant: str = "p-1"
) -> TrialRef:
    """A Success evaluation as the evaluator would have written it."""
    ref = TrialRef(match, participant, f"{n:04d}")
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    store.put_evaluation(ref, Evaluation(objective=objective, info=info or {}), TIMING)
    return ref


def received_stdin(client: docker.DockerClient, labels: dict[str, str]) -> dict[str, list[Any]]:
    """What each indicator container read, by trial of its first line (rm: false keeps them)."""
    seen: dict[str, list[Any]] = {}
    for info in containers_labelled(client, labels):
        logs = client.api.logs(info["Id"], stdout=False, stderr=True).decode()
        current, history = logs.splitlines()[:2]
        seen[json.dumps(json.loads(current), sort_keys=True)] = json.loads(history)
    return seen


def history_of(seen: dict[str, list[Any]], objective: Any) -> list[Any]:
    key = json.dumps(
        {"objective": objective, "constraint": None, "info": {}, "feasible": None}, sort_keys=True
    )
    return seen[key]


@on_each_emulator
def test_trials_are_scored_in_order_with_the_history_line_by_line(
    tmp_path: Path,
    aws: AwsStack,
    best_so_far_image: str,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    match, config = setup(tmp_path, aws, best_so_far_image, rm=False)
    refs = [evaluated(aws, match, n, objective) for n, objective in enumerate([5, 3, 4.5, 1], 1)]
    for ref in refs:
        send_job(aws.clients.sqs, aws.scorer_queue_url, ref)
    worker = make_worker("scorer", config, case_labels, num=4)
    assert worker.run().done == 4
    values = [result_item(aws, "Scores", ref)["Value"] for ref in refs]
    assert values == [Decimal(5), Decimal(3), Decimal(3), Decimal(1)]
    item = result_item(aws, "Scores", refs[1])
    assert item["ID"] == f"Scores#Match#{match}#p-1" and item["Trial"] == "Success#0002"
    assert item["ResourceType"] == "Score" and item["Status"] == "Success"
    assert item["TrialNo"] == "0002" and item["MatchID"] == f"Match#{match}"
    assert item["IgnoreStream"] is False and "Objective" not in item
    seen = received_stdin(docker_client, case_labels)
    assert history_of(seen, 5) == []
    assert history_of(seen, 1) == [
        {
            "trial_no": "0001",
            "objective": 5,
            "constraint": None,
            "info": {},
            "feasible": None,
            "score": 5,
        },
        {
            "trial_no": "0002",
            "objective": 3,
            "constraint": None,
            "info": {},
            "feasible": None,
            "score": 3,
        },
        {
            "trial_no": "0003",
            "objective": 4.5,
            "constraint": None,
            "info": {},
            "feasible": None,
            "score": 3,
        },
    ]
    assert queue_counts(aws, aws.scorer_queue_url) == (0, 0, 0)


def test_failed_evaluations_and_failed_scores_are_left_out(
    tmp_path: Path,
    aws: AwsStack,
    best_so_far_image: str,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    match, config = setup(tmp_path, aws, best_so_far_image, rm=False)
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    first = evaluated(aws, match, 1, 2)
    store.put_score(first, Score(2), TIMING)
    store.put_evaluation(TrialRef(match, "p-1", "0002"), Failure("bad", "x"), TIMING)
    third = evaluated(aws, match, 3, 1)
    store.put_score(third, Failure("indicator failed", "x"), TIMING)
    fourth = evaluated(aws, match, 4, 7)
    send_job(aws.clients.sqs, aws.scorer_queue_url, fourth)
    assert make_worker("scorer", config, case_labels, num=1).run().done == 1
    assert result_item(aws, "Scores", fourth)["Value"] == Decimal(2)
    seen = received_stdin(docker_client, case_labels)
    assert [entry["trial_no"] for entry in history_of(seen, 7)] == ["0001"]


def test_out_of_order_arrival_waits_for_the_earlier_score(
    tmp_path: Path,
    aws: AwsStack,
    best_so_far_image: str,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    dead_letter_queue = aws.new_queue("scorer-dlq-test", dead_letter_max_receives=2)
    match, config = setup(
        tmp_path,
        aws,
        best_so_far_image,
        rm=False,
        defer_seconds=1,
        scorer_queue_url=dead_letter_queue,
    )
    first = evaluated(aws, match, 1, 4)
    second = evaluated(aws, match, 2, 6)
    send_job(aws.clients.sqs, dead_letter_queue, second)
    worker = make_worker("scorer", config, case_labels, num=2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while worker.stats.retried < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    # Trial 2 was made visible again three times: more than the queue's redrive limit of 2.
    assert worker.stats.retried >= 3
    send_job(aws.clients.sqs, dead_letter_queue, first)
    thread.join(60)
    assert not thread.is_alive()
    assert result_item(aws, "Scores", first)["Value"] == Decimal(4)
    assert result_item(aws, "Scores", second)["Value"] == Decimal(4)
    seen = received_stdin(docker_client, case_labels)
    assert [entry["trial_no"] for entry in history_of(seen, 6)] == ["0001"]
    dlq_url = dead_letter_queue + "-dlq"
    assert queue_counts(aws, dlq_url) == (0, 0, 0)


def test_history_spanning_several_pages(
    tmp_path: Path,
    aws: AwsStack,
    best_so_far_image: str,
    case_labels: dict[str, str],
) -> None:
    match, config = setup(tmp_path, aws, best_so_far_image)
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    padding = {"padding": "x" * 60_000}
    count = 25  # 25 items of 60 kB: more than DynamoDB's 1 MB page
    for n in range(1, count + 1):
        ref = evaluated(aws, match, n, 100 - n, info=padding)
        store.put_score(ref, Score(100 - n), TIMING)
    last = evaluated(aws, match, count + 1, 50)
    send_job(aws.clients.sqs, aws.scorer_queue_url, last)
    worker = make_worker("scorer", config, case_labels, num=1)
    assert worker.run().done == 1
    # The best so far is the last earlier trial's 75: every page was read.
    assert result_item(aws, "Scores", last)["Value"] == Decimal(50)
    assert store.trial_states(match, "p-1", None, f"{count + 1:04d}")[-1].trial_no == "0025"


def test_a_restarted_scorer_reads_only_what_is_new(
    tmp_path: Path,
    aws: AwsStack,
    best_so_far_image: str,
    case_labels: dict[str, str],
) -> None:
    match, config = setup(tmp_path, aws, best_so_far_image)
    refs = [evaluated(aws, match, n, 10 - n) for n in range(1, 6)]
    for ref in refs[:4]:
        send_job(aws.clients.sqs, aws.scorer_queue_url, ref)
        assert make_worker("scorer", config, case_labels, num=1).run().done == 1
    assert (tmp_path / "cache" / "history.sqlite3").exists()
    send_job(aws.clients.sqs, aws.scorer_queue_url, refs[4])
    restarted = make_worker("scorer", config, case_labels, num=1)
    assert restarted.run().done == 1
    assert result_item(aws, "Scores", refs[4])["Value"] == Decimal(5)
    # Trial 5's evaluation, and trial 4's evaluation and score (trial 4 was the
    # newest when the cache was last written); trials 1..3 came from the disk cache.
    # Without the cache it would be 9 items.
    assert restarted.handler.store.items_read == 3  # type: ignore[attr-defined]


def test_cli_scorer_processes_num_messages_and_exits_0(
    tmp_path: Path,
    aws: AwsStack,
    best_so_far_image: str,
    case_labels: dict[str, str],
) -> None:
    match, config = setup(tmp_path, aws, best_so_far_image, num=2, log_level="INFO")
    refs = [evaluated(aws, match, n, objective) for n, objective in ((1, 8), (2, 9))]
    for ref in refs:
        send_job(aws.clients.sqs, aws.scorer_queue_url, ref)
    result = run_cli("scorer", config, {**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    values = {result_item(aws, "Scores", ref)["Value"] for ref in refs}
    assert values == {Decimal(8)}


#: An indicator as OptHub's template writes one: "error": null on success, no trailing
#: newline; it also exits non-zero, which does not decide the outcome.
TEMPLATE_INDICATOR = 'cat >/dev/null\nprintf \'{"score": 0.7, "error": null}\'\nexit 3\n'


def test_an_indicator_printing_error_null_and_exiting_nonzero_scores(
    tmp_path: Path, aws: AwsStack, image_factory: ImageFactory, case_labels: dict[str, str]
) -> None:
    indicator = image_factory("opthub-test/template-indicator:1", TEMPLATE_INDICATOR)
    match, config = setup(tmp_path, aws, indicator)
    ref = evaluated(aws, match, 1, 3)
    send_job(aws.clients.sqs, aws.scorer_queue_url, ref)
    assert make_worker("scorer", config, case_labels, num=1).run().done == 1
    item = result_item(aws, "Scores", ref)
    assert item["Status"] == "Success" and item["Value"] == Decimal("0.7")
