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
        rows = '<tr><td class="empty" colspan="5">none yet</td></tr>'
    else:
        rows = "\n".join(_row(usage, host) for usage in matches)
    note = f'<p class="note">{html.escape(FROM_START_NOTE)}.</p>'
    return (
        '<section id="usage"><h2>What the trials used, per match</h2>'
        "<table><thead><tr><th>match</th><th>trials</th><th>peak memory</th>"
        "<th>CPU time</th><th>wall time</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{note}</section>"
    )


def _row(usage: MatchUsage, host: HostResources) -> str:
    e = html.escape
    trials = (
        f"{usage.trials} ({usage.measured} measured), {usage.memory_kills} killed for memory,"
        f" {usage.timeouts} timed out"
    )
    suggestion = suggest(usage, host)
    said = (
        e(suggestion)
        if isinstance(suggestion, str)
        else "<br>".join(e(line) for line in suggestion.lines)
    )
    return (
        f"<tr><td>{e(usage.match)}</td><td>{e(trials)}</td>"
        f"<td>{e(_sizes(usage.peak_memory))} ({e(_limit(usage))})</td>"
        f"<td>{e(_seconds(usage.cpu_seconds))}</td>"
        f"<td>{e(_seconds(usage.wall_seconds))} (timeout {usage.timeout:g} s)</td></tr>"
        f'<tr class="suggestion"><td colspan="5">suggests (nothing is changed by itself):'
        f" {said}</td></tr>"
    )
