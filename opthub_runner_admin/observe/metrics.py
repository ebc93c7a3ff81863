"""Prometheus metrics of one runner, in a registry of its own (never the global default).

A registry per runner keeps tests (and two runners in one process) apart and
means nothing is registered at import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..jobs.outcome import Outcome
from ..queue import Message
from ..queue.base import QueueStats
from .board import outcome_word
from .events import NoEvents

#: Job and container durations span a second to the 12-hour cap.
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200)
OUTCOMES = ("success", "failed", "already_done", "dropped", "retried")


class RunnerMetrics(NoEvents):
    """A ``JobEvents`` observer that counts into its own ``CollectorRegistry``."""

    def __init__(self, *, mode: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"mode": mode}
        self._jobs = Counter(
            "opthub_runner_jobs",
            "Jobs finished, by outcome.",
            ["mode", "outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self._jobs.labels(mode=mode, outcome=outcome)
        self._mode = mode
        self._job_seconds = Histogram(
            "opthub_runner_job_duration_seconds",
            "Seconds from receiving a message to settling it.",
            ["mode"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self._container_seconds = Histogram(
            "opthub_runner_container_duration_seconds",
            "Seconds one container ran.",
            ["mode"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self._in_flight = Gauge(
            "opthub_runner_jobs_in_flight", "Jobs running now.", ["mode"], registry=self.registry
        ).labels(**labels)
        self._depth = Gauge(
            "opthub_runner_queue_depth",
            "Messages waiting in the queue (SQS ApproximateNumberOfMessages).",
            ["mode"],
            registry=self.registry,
        ).labels(**labels)
        self._retries = Counter(
            "opthub_runner_retries",
            "Jobs that ended in a retry (message made visible again or resent).",
            ["mode"],
            registry=self.registry,
        ).labels(**labels)
        self._pulls = Counter(
            "opthub_runner_image_pulls", "Images pulled.", ["mode"], registry=self.registry
        ).labels(**labels)
        self._refreshes = Counter(
            "opthub_runner_token_refreshes",
            "Renewals of the administrator's access token.",
            ["mode"],
            registry=self.registry,
        ).labels(**labels)

        self._oldest_age = Gauge(
            "opthub_runner_oldest_message_age_seconds",
            "Age of the queue's oldest message (CloudWatch ApproximateAgeOfOldestMessage).",
            ["mode"],
            registry=self.registry,
        ).labels(**labels)
        self._retention_left = Gauge(
            "opthub_runner_oldest_message_retention_remaining_seconds",
            "Seconds before SQS deletes the oldest message (MessageRetentionPeriod minus its age).",
            ["mode"],
            registry=self.registry,
        ).labels(**labels)
        self._dead_letters = Gauge(
            "opthub_runner_dead_letters",
            "Messages in the dead-letter queue of the runner's queue.",
            ["mode"],
            registry=self.registry,
        ).labels(**labels)

    def job_started(self, message: Message) -> None:
        self._in_flight.inc()

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        self._in_flight.dec()
        word = outcome_word(outcome)
        self._jobs.labels(mode=self._mode, outcome=word).inc()
        self._job_seconds.observe(seconds)
        if word == "retried":
            self._retries.inc()

    def container_started(self, image: str, secrets: Sequence[str]) -> None:
        pass

    def container_finished(self, image: str, seconds: float) -> None:
        self._container_seconds.observe(seconds)

    def queue_depth(self, messages: int) -> None:
        self._depth.set(messages)

    def queue_stats(self, stats: QueueStats) -> None:
        """Unknown values (no CloudWatch datapoint, no dead-letter queue) are NaN."""
        empty = stats.total == 0
        age = 0.0 if empty else stats.oldest_age
        left = stats.retention_seconds if empty else stats.retention_left
        self._oldest_age.set(math.nan if age is None else age)
        self._retention_left.set(math.nan if left is None else left)
        dead = stats.dead_letters
        self._dead_letters.set(math.nan if dead is None else dead)

    def image_pulled(self, image: str) -> None:
        self._pulls.inc()

    def token_refreshed(self) -> None:
        self._refreshes.inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
