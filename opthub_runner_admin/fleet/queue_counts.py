"""``opthub-runner status``: each queue's counts as every runner on every host sees them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..queue.base import FleetQueue, QueueStats


@dataclass(frozen=True)
class QueueRow:
    """One queue of the fleet: its mode and its counts."""

    mode: str
    stats: QueueStats


def read_status(queues: Mapping[str, FleetQueue]) -> list[QueueRow]:
    """The stats of each queue, in the order given."""
    return [QueueRow(mode, queue.stats()) for mode, queue in queues.items()]


def age_text(seconds: float | None) -> str:
    """An age for people: ``42 s``, ``7 min``, ``3.5 h``, ``4.0 days``; ``unknown`` when None."""
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


#: Column titles of the status table, with their widths.
_COLUMNS = (
    ("queue", 10),
    ("visible", 8),
    ("in flight", 10),
    ("delayed", 8),
    ("oldest", 9),
    ("left", 10),
    ("dead letters", 12),
)


def status_lines(rows: list[QueueRow]) -> list[str]:
    """A table, numbers aligned right, then each queue's URL and its dead-letter queue's.

    ``left`` is how long the oldest message has before SQS deletes it (its
    queue's MessageRetentionPeriod minus its age).
    """
    header = " ".join(
        title.ljust(width) if n == 0 else title.rjust(width)
        for n, (title, width) in enumerate(_COLUMNS)
    )
    lines = [header]
    for row in rows:
        s = row.stats
        dead = "no DLQ" if s.dead_letters is None else str(s.dead_letters)
        left = "-" if not s.total else age_text(s.retention_left)
        cells = (row.mode, s.visible, s.in_flight, s.delayed, age_text(s.oldest_age), left, dead)
        lines.append(
            " ".join(
                str(cell).ljust(width) if n == 0 else str(cell).rjust(width)
                for n, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True))
            )
        )
    lines.append("")
    for row in rows:
        lines.append(f"{row.mode}: {row.stats.url}")
        if row.stats.dead_letter_url:
            lines.append(f"{row.mode} dead letters: {row.stats.dead_letter_url}")
    for row in rows:
        if row.stats.retention_seconds is not None:
            kept = age_text(row.stats.retention_seconds)
            lines.append(f"{row.mode}: SQS deletes a message {kept} after it was sent")
    if any(row.stats.oldest_age is None and row.stats.total for row in rows):
        lines.append(
            "oldest: unknown where CloudWatch has no ApproximateAgeOfOldestMessage yet"
            " (AWS publishes it every minute; local stacks never do)"
        )
    return lines
