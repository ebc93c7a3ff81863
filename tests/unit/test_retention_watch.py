"""The oldest message's time before SQS deletes it: the log's warning, the metrics, the line."""

from __future__ import annotations

import logging

import pytest

from opthub_runner_admin.observe.board import StatusBoard
from opthub_runner_admin.observe.metrics import RunnerMetrics
from opthub_runner_admin.observe.retention import RETENTION_WARNING_SECONDS, RetentionWatch
from opthub_runner_admin.observe.status import status_line
from opthub_runner_admin.queue.base import QueueStats

DAY = 86400
KEPT = 4 * DAY


def sample(age: float | None, *, visible: int = 1, dead: int | None = 2) -> QueueStats:
    return QueueStats(
        url="memory://q",
        visible=visible,
        in_flight=0,
        delayed=0,
        oldest_age=age,
        dead_letters=dead,
        retention_seconds=KEPT,
    )


def test_the_warning_comes_once_per_crossing_under_a_day(caplog: pytest.LogCaptureFixture) -> None:
    watch = RetentionWatch(mode="evaluator")
    ages = [1 * DAY, 3.2 * DAY, 3.3 * DAY, None, 3.5 * DAY, 0.1 * DAY, 3.9 * DAY]
    with caplog.at_level(logging.INFO, logger="opthub_runner_admin.observe.retention"):
        for age in ages:
            watch.queue_stats(sample(age))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert RETENTION_WARNING_SECONDS == DAY
    assert len(warnings) == 2, warnings  # at 3.2 days (0.8 left), again at 3.9 after the recovery
    assert warnings[0].startswith("evaluator queue: its oldest message (3.2 days old)")
    assert "deleted by SQS in 19.2 h (MessageRetentionPeriod 4.0 days)" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["evaluator queue: the oldest message has 3.9 days left again"]


def test_metrics_show_the_age_the_time_left_and_the_dead_letters() -> None:
    metrics = RunnerMetrics(mode="scorer")
    metrics.queue_stats(sample(3600.0))
    text = metrics.exposition().decode()
    assert 'opthub_runner_oldest_message_age_seconds{mode="scorer"} 3600.0' in text
    left = (
        f'opthub_runner_oldest_message_retention_remaining_seconds{{mode="scorer"}} {KEPT - 3600.0}'
    )
    assert left in text
    assert 'opthub_runner_dead_letters{mode="scorer"} 2.0' in text

    metrics.queue_stats(sample(None, dead=None))  # unknown: NaN, never a stale number
    text = metrics.exposition().decode()
    assert 'opthub_runner_oldest_message_age_seconds{mode="scorer"} NaN' in text
    assert 'opthub_runner_dead_letters{mode="scorer"} NaN' in text

    metrics.queue_stats(sample(None, visible=0))  # empty: nothing waits, the whole period ahead
    text = metrics.exposition().decode()
    assert 'opthub_runner_oldest_message_age_seconds{mode="scorer"} 0.0' in text
    assert f'remaining_seconds{{mode="scorer"}} {float(KEPT)}' in text


def test_the_status_line_says_how_long_the_oldest_message_has() -> None:
    board = StatusBoard(slow_after=600, clock=lambda: 0.0)
    board.queue_stats(sample(3 * DAY))
    line = status_line("evaluator", board.snapshot())
    assert line.endswith(", oldest 3.0 days (24.0 h before SQS deletes it)"), line
    board.queue_stats(sample(None))
    assert "before SQS deletes it" not in status_line("evaluator", board.snapshot())
