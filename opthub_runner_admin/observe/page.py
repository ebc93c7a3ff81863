"""The status page: plain HTML from a template shipped in the package, every value escaped.

It shows no secret: ids, image names, outcomes and the administrator's
messages, from which the board already redacted the job's environment
values. Everything is put through ``html.escape``.
"""

from __future__ import annotations

import html
from importlib import resources
from string import Template

from ..fleet.queue_counts import age_text
from ..queue.base import QueueStats
from .board import BUCKET_SECONDS, HISTORY_SECONDS, JobView, MatchRow, ResultView, Snapshot
from .charts import bar_chart, depth_chart

#: Seconds between the page's own reloads.
REFRESH_SECONDS = 5


def static_text(name: str) -> str:
    return (
        resources.files(__package__).joinpath("static").joinpath(name).read_text(encoding="utf-8")
    )


def render_page(mode: str, snapshot: Snapshot, problem: str | None) -> str:
    """The whole page; ``problem`` is why ``/healthz`` fails, if it does."""
    slow = {id(job) for job in snapshot.slow}
    in_flight = "\n".join(
        _job_row(job, snapshot.now, id(job) in slow) for job in snapshot.in_flight
    )
    recent = "\n".join(_result_row(result, snapshot.now) for result in snapshot.recent)
    depth = "?" if snapshot.queue_depth is None else str(snapshot.queue_depth)
    return Template(static_text("status.html")).substitute(
        refresh=REFRESH_SECONDS,
        mode=_e(mode),
        health_class="unhealthy" if problem else "ok",
        health=_e(f"UNHEALTHY: {problem}" if problem else "healthy"),
        done=snapshot.done,
        failed=snapshot.failed,
        in_flight_count=len(snapshot.in_flight),
        rate=f"{snapshot.rate_per_minute:.1f}",
        depth=_e(depth),
        in_flight_rows=in_flight or '<tr><td class="empty" colspan="5">none</td></tr>',
        recent_rows=recent or '<tr><td class="empty" colspan="6">none yet</td></tr>',
        queue_tiles=_queue_tiles(snapshot.queue),
        jobs_chart=bar_chart(
            f"Jobs finished per {BUCKET_SECONDS / 60:.0f} minute, last hour",
            snapshot.jobs_per_minute,
            HISTORY_SECONDS,
        ),
        jobs_last_hour=sum(snapshot.jobs_per_minute),
        depth_chart=depth_chart(
            "Messages visible and in flight, last hour", snapshot.depth_history, HISTORY_SECONDS
        ),
        match_rows="\n".join(_match_row(row) for row in snapshot.matches)
        or '<tr><td class="empty" colspan="5">none yet</td></tr>',
    )


def _queue_tiles(stats: QueueStats | None) -> str:
    """The queue as every runner on every host sees it (what ``opthub-runner status`` shows)."""
    if stats is None:
        return '<p class="empty">not sampled yet</p>'
    dead = "no DLQ" if stats.dead_letters is None else str(stats.dead_letters)
    tiles = (
        ("visible", str(stats.visible), ""),
        ("in flight", str(stats.in_flight), ""),
        ("delayed", str(stats.delayed), ""),
        ("oldest", age_text(stats.oldest_age), ""),
        _retention_tile(stats),
        ("dead letters", dead, " alert" if stats.dead_letters else ""),
    )
    return "".join(
        f'<div class="tile{extra}" id="q-{_e(name.replace(" ", "-"))}">'
        f'<span class="value">{_e(value)}</span><span class="label">{_e(name)}</span></div>'
        for name, value, extra in tiles
    )


def _retention_tile(stats: QueueStats) -> tuple[str, str, str]:
    """How long the oldest message has before SQS deletes it; an alert under a day."""
    from .retention import RETENTION_WARNING_SECONDS

    left = stats.retention_left
    if left is None:
        return ("left before deletion", "no message" if not stats.total else "unknown", "")
    alert = " alert" if left < RETENTION_WARNING_SECONDS else ""
    return ("left before deletion", age_text(left), alert)


def _match_row(row: MatchRow) -> str:
    median = "-" if row.median_seconds is None else _duration(row.median_seconds)
    failed_class = ' class="failed"' if row.failed else ""
    return (
        f'<tr><td>{_e(row.match)}</td><td class="num">{row.done}</td>'
        f'<td class="num"><span{failed_class}>{row.failed}</span></td>'
        f'<td class="num">{median}</td><td class="message">{_e(row.last_failure)}</td></tr>'
    )


def _job_row(job: JobView, now: float, slow: bool) -> str:
    cells = (job.participant, job.trial, job.match, job.image or "(starting)")
    tds = "".join(f"<td>{_e(cell)}</td>" for cell in cells)
    running = f'<td class="running">{_duration(job.running_for(now))}</td>'
    return f'<tr class="{"slow" if slow else "job"}">{tds}{running}</tr>'


def _result_row(result: ResultView, now: float) -> str:
    return (
        f'<tr class="{_e(result.outcome)}"><td>{_e(result.participant)}</td>'
        f"<td>{_e(result.trial)}</td>"
        f'<td class="outcome">{_e(result.outcome)}</td>'
        f"<td>{_duration(result.seconds)}</td><td>{_duration(now - result.finished)}</td>"
        f'<td class="message">{_e(result.admin_message)}</td></tr>'
    )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
