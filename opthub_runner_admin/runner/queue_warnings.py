"""What a queue's settings can cost a competition, said at start (runner's log, ``doctor``)."""

from __future__ import annotations

from ..jobs.trial_job import MISSING_INPUT_RECEIVES
from ..queue.base import QueueInfo

#: A runner stopped, paused or broken longer than the queue's retention loses the trials
#: waiting in it for good: under a week, a long weekend with nobody watching is enough.
SHORT_RETENTION_SECONDS = 7 * 86400
#: SQS's longest retention (14 days).
MAX_RETENTION_SECONDS = 14 * 86400


def queue_warnings(info: QueueInfo, key: str) -> list[str]:
    """One line per setting of the queue that can lose or divert trials."""
    warnings: list[str] = []
    limit = info.max_receive_count
    if limit is not None and limit <= MISSING_INPUT_RECEIVES:
        # A solution not yet in the table is made visible again for up to
        # MISSING_INPUT_RECEIVES receives, and every receive counts toward the limit.
        warnings.append(
            f"{key}: its dead-letter queue takes a message after {limit} receives, which a"
            f" message waiting for its solution (up to {MISSING_INPUT_RECEIVES} receives) can"
            " reach: raise the redrive policy's maxReceiveCount to 10 or more"
        )
    kept = info.retention_seconds
    if kept is not None and kept < SHORT_RETENTION_SECONDS:
        warnings.append(
            f"{key}: SQS deletes a message {_days(kept)} after it was sent, so a runner stopped"
            f" or paused longer loses the trials waiting: set the queue's"
            f" MessageRetentionPeriod to {MAX_RETENTION_SECONDS} (14 days, the most SQS allows)"
        )
    return warnings


def _days(seconds: int) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours"
    return f"{seconds} seconds"
