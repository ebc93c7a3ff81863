"""Each match's figures and suggestions, as lines (``status``, the log) and as the page's table."""

from __future__ import annotations

import html
from collections.abc import Sequence

from ..host.resources import HostResources
from ..settings.sizes import format_size
from .match_usage import MatchUsage, Spread
from .usage_suggestions import suggest

#: Said wherever the figures are shown.
FROM_START_NOTE = (
    "figures of containers started ahead of their job (prestart) count from the container's"
    " start, not from its input"
)


def _sizes(spread: Spread | None) -> str:
    if spread is None:
        return "not measured"
    return (
        f"p50 {format_size(int(spread.p50))}, p95 {format_size(int(spread.p95))},"
        f" max {format_size(int(spread.max))}"
    )


def _seconds(spread: Spread | None) -> str:
    if spread is None:
        return "not measured"
    return f"p50 {spread.p50:.2f} s, p95 {spread.p95:.2f} s, max {spread.max:.2f} s"


def _limit(usage: MatchUsage) -> str:
    return "no limit" if usage.memory_limit is None else f"limit {format_size(usage.memory_limit)}"


def match_lines(usage: MatchUsage, host: HostResources) -> list[str]:
    """What one match's trials used, against the limits, then what that suggests."""
    lines = [
        f"match {usage.match}: {usage.trials} trials ({usage.measured} measured),"
        f" {usage.memory_kills} killed for memory, {usage.timeouts} timed out",
        f"  peak memory {_sizes(usage.peak_memory)} ({_limit(usage)})",
        f"  CPU time {_seconds(usage.cpu_seconds)}",
        f"  wall time {_seconds(usage.wall_seconds)} (timeout {usage.timeout:g} s)",
    ]
    if usage.not_measured:
        lines.append(f"  {usage.not_measured}")
    suggestion = suggest(usage, host)
    if isinstance(suggestion, str):
        lines.append(f"  suggests nothing yet: {suggestion}")
    else:
        lines.append("  suggests (nothing is changed by itself):")
        lines.extend(f"    {line}" for line in suggestion.lines)
    return lines


def usage_lines(matches: Sequence[MatchUsage], host: HostResources) -> list[str]:
    if not matches:
        return ["no trial has run a container yet"]
    lines = [line for usage in matches for line in match_lines(usage, host)]
    if any(usage.from_start for usage in matches):
        lines.append(f"({FROM_START_NOTE})")
    return lines


def usage_section(matches: Sequence[MatchUsage], host: HostResources) -> str:
    """The page's table: one row per match, its suggestion beneath."""
    if not matches:
        rows = '<tr><td class="empty" colspan="7">none yet</td></tr>'
    else:
        rows = "\n".join(_row(usage, host) for usage in matches)
    note = f"<p>{html.escape(FROM_START_NOTE)}.</p>" if any(m.from_start for m in matches) else ""
    return (
        "<section>\n<h2>What the trials used</h2>\n"
        '<table id="usage">\n<thead><tr><th>Match</th><th class="num">Trials (measured)</th>'
        '<th class="num">Killed for memory</th><th class="num">Timed out</th>'
        "<th>Peak memory p50 / p95 / max (limit)</th><th>CPU time p50 / p95 / max</th>"
        "<th>Wall time p50 / p95 / max (timeout)</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n</table>\n{note}</section>"
    )


def _compact_sizes(spread: Spread | None) -> str:
    """``41 / 88 / 256 MiB``: the three in the unit of the largest."""
    if spread is None:
        return "not measured"
    unit, factor = next(
        ((u, f) for u, f in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)) if spread.max >= f),
        ("bytes", 1),
    )
    return (
        " / ".join(f"{v / factor:.1f}" for v in (spread.p50, spread.p95, spread.max)) + f" {unit}"
    )


def _compact_seconds(spread: Spread | None) -> str:
    if spread is None:
        return "not measured"
    return " / ".join(f"{v:.2f}" for v in (spread.p50, spread.p95, spread.max)) + " s"


def _row(usage: MatchUsage, host: HostResources) -> str:
    e = html.escape
    limit = "none" if usage.memory_limit is None else format_size(usage.memory_limit)
    suggestion = suggest(usage, host)
    said = (
        e(suggestion)
        if isinstance(suggestion, str)
        else "\n".join(e(line) for line in suggestion.lines)
    )
    return (
        f"<tr><td>{e(usage.match)}</td>"
        f'<td class="num">{usage.trials} ({usage.measured})</td>'
        f'<td class="num">{usage.memory_kills}</td><td class="num">{usage.timeouts}</td>'
        f"<td>{e(_compact_sizes(usage.peak_memory))} ({e(limit)})</td>"
        f"<td>{e(_compact_seconds(usage.cpu_seconds))}</td>"
        f"<td>{e(_compact_seconds(usage.wall_seconds))} ({usage.timeout:g} s)</td></tr>\n"
        f'<tr><td class="message" colspan="7">suggests (nothing is changed by itself):\n{said}'
        "</td></tr>"
    )
