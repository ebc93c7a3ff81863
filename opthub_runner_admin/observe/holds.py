"""Why a runner takes no new job now: the holds an operator sees (paused, login needed).

A hold stops the worker from taking messages while the jobs it runs go on.
The worker keeps them (``worker.hold``); the status line, the page,
``/healthz`` and the metrics show them from these values.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fleet.queue_counts import age_text

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
        return f"{self.reason.upper()} for {age_text(now - self.since)} ({self.detail})"
