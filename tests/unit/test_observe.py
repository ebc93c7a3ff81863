"""Seeing a running runner: status line, per-job lines, JSON logs, metrics, /healthz.

The end-to-end test starts the real CLI as a subprocess on a moto server and
the real Docker daemon, scrapes its port over HTTP and parses its log; the
health and status-line logic is driven with an injected clock (no sleeps).
"""

from __future__ import annotations

import json
import re
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opthub_runner_admin.config.schema import Config
from opthub_runner_admin.jobs.outcome import Done, HandBack
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.observe.board import StatusBoard
from opthub_runner_admin.observe.metrics import RunnerMetrics
from opthub_runner_admin.observe.monitor import Monitor
from opthub_runner_admin.observe.status import status_line
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import job_body, put_solution, send_job
from opthub_runner_admin.platform_side.runners import RunnerPool, RunnerProcess, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.queue import Message

MATCH = "3b7c0b1e-0000-4000-8000-0000000000b5"
_ADDRESS = re.compile(r"/healthz on http://(127\.0\.0\.1):(\d+)/")


@pytest.fixture
def runners(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[RunnerPool]:
    pool = RunnerPool(tmp_path, docker_client)
    try:
        yield pool
    finally:
        pool.cleanup()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def base_url(process: RunnerProcess) -> str:
    found = wait_for(lambda: _ADDRESS.search(process.log()), 60, "the monitor's address")
    return f"http://{found.group(1)}:{found.group(2)}"


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample in a Prometheus exposition."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


def submit(aws: AwsStack, trial: str, variable: object, participant: str = "p-obs") -> TrialRef:
    ref = TrialRef(MATCH, participant, trial)
    put_solution(aws.clients.dynamodb, aws.table_name, ref, variable)
    send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
    return ref


def test_metrics_status_line_and_json_logs_of_a_running_evaluator(
    tmp_path: Path, aws: AwsStack, sphere_image: str, runners: RunnerPool
) -> None:
    for trial, variable in (("0001", [1]), ("0002", [2]), ("0003", "not numbers")):
        submit(aws, trial, variable)
    config = write_config(
        tmp_path,
        aws,
        {MATCH: match_entry(sphere_image)},
        metrics_port=0,
        status_interval=1,
        log_format="json",
        log_level="INFO",
    )
    process = runners.start("evaluator", config)
    url = base_url(process)

    def finished() -> dict[str, float] | None:
        values = samples(get(f"{url}/metrics")[1])
        done = values["opthub_runner_jobs_total{mode=evaluator,outcome=success}"]
        failed = values["opthub_runner_jobs_total{mode=evaluator,outcome=failed}"]
        return values if done == 2 and failed == 1 else None

    values = wait_for(finished, 90, "three jobs in the metrics")
    wait_for(lambda: '"queue_depth": 0' in process.log(), 30, "a status line with depth 0")
    health = get(f"{url}/healthz")
    usage = json.loads(get(f"{url}/usage.json")[1])
    process.signal(signal.SIGTERM)
    assert process.wait(60) == 0

    assert health == (200, "ok\n")
    assert values["opthub_runner_job_duration_seconds_count{mode=evaluator}"] == 3
    assert values["opthub_runner_container_duration_seconds_count{mode=evaluator}"] == 3
    assert values["opthub_runner_jobs_in_flight{mode=evaluator}"] == 0
    assert values["opthub_runner_retries_total{mode=evaluator}"] == 0
    assert "opthub_runner_image_pulls_total{mode=evaluator}" in values
    assert "opthub_runner_token_refreshes_total{mode=evaluator}" in values
    lines = [json.loads(line) for line in process.log().splitlines() if line.strip()]
    jobs = {entry["trial"]: entry for entry in lines if entry.get("event") == "job"}
    assert {t: e["outcome"] for t, e in jobs.items()} == {
        "0001": "success",
        "0002": "success",
        "0003": "failed",
    }
    assert all(e["participant"] == "p-obs" and e["duration_s"] >= 0 for e in jobs.values())
    # What each trial's container used: its figures, or why they are missing (a run of a few
    # milliseconds may end before its first reading).
    for entry in jobs.values():
        assert entry["wall_s"] >= 0
        assert "peak_memory_bytes" in entry or entry["usage_note"].startswith("not measured")
    labels = f"match={MATCH},mode=evaluator"
    assert values[f"opthub_runner_trial_wall_seconds_count{{{labels}}}"] == 3
    assert values[f"opthub_runner_trial_timeouts_total{{{labels}}}"] == 0
    (match_usage,) = usage["matches"]
    assert (usage["mode"], match_usage["match"], match_usage["trials"]) == ("evaluator", MATCH, 3)
    statuses = [entry for entry in lines if entry.get("event") == "status"]
    assert statuses and statuses[-1]["done"] == 2 and statuses[-1]["failed"] == 1
    # The final line counts as the status line does ("done" without the Failed ones).
    (stopped,) = [e["message"] for e in lines if e["message"].startswith("evaluator stopped:")]
    assert stopped.startswith("evaluator stopped: 2 done, 1 failed, 0 dropped"), stopped
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)


def test_the_monitor_binds_to_loopback_by_default() -> None:
    config = Config(region_name="r", table_name="t", metrics_port=0)
    monitor = Monitor(mode="evaluator", config=config, stats=lambda: None)
    monitor.start()
    try:
        assert monitor.server is not None
        host, port = monitor.server.address
        status, text = get(f"http://127.0.0.1:{port}/metrics")
    finally:
        monitor.stop()

    assert host == "127.0.0.1"
    assert status == 200 and "opthub_runner_jobs_total" in text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(trial: str, message_id: str = "m-1") -> Message:
    ref = TrialRef(MATCH, "p-7", trial)
    return Message(message_id=message_id, body=job_body(ref), receipt="r", receive_count=1,
                   received_at=0.0)  # fmt: skip


def test_healthz_turns_unhealthy_when_the_loop_is_stuck() -> None:
    clock = Clock()
    config = Config(
        region_name="r", table_name="t", metrics_port=0, health_stall_seconds=60, timeout=600
    )
    monitor = Monitor(mode="evaluator", config=config, stats=lambda: None, clock=clock)
    monitor.start()
    try:
        assert monitor.server is not None
        url = f"http://127.0.0.1:{monitor.server.address[1]}/healthz"
        monitor.events.polled()
        fresh = get(url)
        clock.now += 61  # no poll, no progress for longer than the stall time
        stuck = get(url)
        page = get(url.removesuffix("healthz"))
        monitor.events.polled()
        recovered = get(url)
        monitor.events.job_started(message("0001"))
        clock.now += 500  # a job inside its container timeout is not a stuck loop
        busy = get(url)
        clock.now += 200  # past timeout + stall time with no event at all: stuck
        hung = get(url)
    finally:
        monitor.stop()

    assert fresh == (200, "ok\n")
    assert stuck == (503, "unhealthy: no poll and no progress for 61 s (limit 60 s)\n")
    assert page[0] == 200 and "UNHEALTHY: no poll and no progress for 61 s" in page[1]
    assert recovered[0] == 200
    assert busy[0] == 200
    assert hung[0] == 503


def test_the_status_line_names_a_job_past_the_warning_threshold() -> None:
    clock = Clock()
    board = StatusBoard(slow_after=600, clock=clock)
    board.queue_depth(42)
    board.job_started(message("0001", "m-1"))
    board.job_finished(message("0001", "m-1"), Done("evaluation Success"), 1.0)
    board.job_started(message("0002", "m-2"))
    clock.now += 300
    board.job_started(message("0003", "m-3"))
    before = status_line("evaluator", board.snapshot())
    clock.now += 301

    after = status_line("evaluator", board.snapshot())

    assert before.startswith(
        "evaluator status: 1 done, 0 failed, 2 in flight, 0.2 jobs/min, queue depth 42"
    )
    assert "SLOW" not in before
    assert "SLOW: participant p-7 trial 0002" in after
    assert "trial 0003" not in after


def test_metrics_live_in_a_registry_of_their_own() -> None:
    # Two runners in one process (the tests, the demo) must not collide.
    first, second = RunnerMetrics(mode="evaluator"), RunnerMetrics(mode="evaluator")
    first.job_started(message("0001"))
    first.job_finished(message("0001"), HandBack(0, "x"), 2.0)

    one = samples(first.exposition().decode())
    other = samples(second.exposition().decode())

    assert one["opthub_runner_retries_total{mode=evaluator}"] == 1
    assert one["opthub_runner_jobs_total{mode=evaluator,outcome=retried}"] == 1
    assert other["opthub_runner_retries_total{mode=evaluator}"] == 0


def test_pulls_reported_by_the_executor_are_counted() -> None:
    # The executor calls ``image_pulled`` after each completed pull
    # (tests/test_executor_images.py checks that against a real registry).
    monitor = Monitor(
        mode="evaluator", config=Config(region_name="r", table_name="t"), stats=lambda: None
    )
    monitor.events.image_pulled("opthub-test/pulled:1")
    monitor.events.image_pulled("opthub-test/pulled:2")

    values = samples(monitor.metrics.exposition().decode())
    assert values["opthub_runner_image_pulls_total{mode=evaluator}"] == 2
