"""opthub_runner_last_progress_timestamp_seconds: what moves it and what does not."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from opthub_runner_admin.jobs.outcome import Done
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.observe.metrics import RunnerMetrics
from opthub_runner_admin.observe.progress import NAME, ProgressClock
from opthub_runner_admin.platform_side.contract import job_body
from opthub_runner_admin.queue import Message


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _message(trial: str) -> Message:
    body = job_body(TrialRef("m", "p", trial))
    return Message(message_id=f"m-{trial}", body=body, receipt="r", receive_count=1, received_at=0)


def _value(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(NAME, {"mode": "evaluator"})


def test_a_stuck_job_stops_the_clock_and_settling_moves_it() -> None:
    registry, clock = CollectorRegistry(), Clock()
    progress = ProgressClock(registry=registry, mode="evaluator", clock=clock)
    assert _value(registry) == 1_000.0  # the start counts

    clock.now = 1_010.0
    progress.polled()  # idle: the loop is alive
    assert _value(registry) == 1_010.0

    progress.job_started(_message("0001"))
    clock.now = 1_500.0
    progress.polled()  # a job is running and nothing settled: no progress
    assert _value(registry) == 1_010.0

    clock.now = 1_600.0
    progress.job_finished(_message("0001"), Done("evaluation Success"), 590.0)
    assert _value(registry) == 1_600.0
    clock.now = 1_700.0
    progress.polled()
    assert _value(registry) == 1_700.0


def test_the_runner_metrics_export_it() -> None:
    metrics = RunnerMetrics(mode="evaluator")
    before = _value(metrics.registry)
    assert before is not None and before > 0
    metrics.job_started(_message("0001"))
    metrics.job_finished(_message("0001"), Done("evaluation Success"), 1.0)
    after = _value(metrics.registry)
    assert after is not None and after >= before
    assert NAME.encode() in metrics.exposition()
