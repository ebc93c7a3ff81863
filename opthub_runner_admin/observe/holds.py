"""Why a runner takes no new job now: the holds an operator sees (paused, login needed).

A hold stops the worker from taking messages while the jobs it runs go on.
The worker keeps them (``worker.hold``); the status line, the page,
``/healthz`` and the metrics show them from these values.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The operator paused the runner (``opthub-runner pause``): healthy, on purpose.
PAUSED = "paused"
#: The administrator's login ended and waits for the password: not ready.
LOGIN_NEEDED = "login needed"


@dataclass(frozen=True)
class Hold:
    """One reason to take no new job, since ``since`` (unix time)."""

    reason: str
    detail: str
    since: float

    def line(self, now: float) -> str:
        """``PAUSED for 2.0 h (opthub-runner resume goes on)`` as the status line shows it."""
        return f"{self.reason.upper()} for {held_for(now - self.since)} ({self.detail})"


def held_for(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
