"""The worker's settings and counters."""

from __future__ import annotations

from dataclasses import dataclass

from .heartbeat import SQS_CAP, VisibilityCap


@dataclass(frozen=True)
class WorkerSettings:
    #: Seconds one long poll of an empty queue lasts (the ``interval`` key; 1..20).
    poll_seconds: int = 2
    #: Heartbeat window: a dead runner's message is visible again after at most this.
    visibility_window: int = 60
    #: Stop after this many finished jobs (0 = no limit).
    max_jobs: int = 0
    #: After stop(), seconds the running jobs may take before they are cancelled (None = no limit).
    grace_period: float | None = None
    #: First and longest pause of one cause of trouble (a match, Docker, AWS).
    backoff_initial: float = 5.0
    backoff_max: float = 300.0
    #: SQS's 12-hour cap on one receipt and the margins kept inside it (tests shorten it).
    visibility_cap: VisibilityCap = SQS_CAP
    #: Jobs run at once (the ``workers`` key).
    workers: int = 1
    #: Jobs of one group (participant) run at once (None = no cap).
    max_jobs_per_group: int | None = None
    #: Seconds a message may wait here for its turn and still start on its receipt.
    #: Its 12-hour budget counts from the receive, so one that waited longer goes
    #: back as a fresh copy (a fresh receipt) instead of running on what is left.
    max_local_wait: float = 300.0


@dataclass
class WorkerStats:
    """Counters, exact under concurrency: the worker changes them under its lock."""

    received: int = 0
    #: Messages settled with the trial's result in the table (Success, Failed, or earlier).
    done: int = 0
    #: Of ``done``: those whose result was written now as Failed.
    failed: int = 0
    dropped: int = 0
    #: Jobs whose message went back (a HandBack: made visible again; a Resend: a fresh copy).
    retried: int = 0
    cancelled: int = 0
    errors: int = 0
    #: Messages given back without running (their cause backs off, their group is full, or stop).
    held_back: int = 0
    #: Messages settled in any way (deleted, made visible, resent or cancelled); a finished job's
    #: message counts at the job's end, its delete may follow.
    settled: int = 0
    #: Times receiving rested because a whole batch went straight back (FIFO only).
    rests: int = 0
    #: Most jobs that ran at the same time.
    peak_running: int = 0

    def summary(self) -> str:
        """The counts as the status line gives them: "done" without the Failed ones."""
        return (
            f"{self.done - self.failed} done, {self.failed} failed, {self.dropped} dropped,"
            f" {self.retried} retried, {self.held_back} went back unstarted"
        )

    @property
    def finished(self) -> int:
        return self.done + self.dropped
