"""How long a runner takes to stop after SIGTERM: what every engine's grace period must cover.

A first SIGTERM drains: no new message is taken, the running jobs finish, at
most ``grace_period`` seconds when it is set (then they are cancelled and
their messages handed back), else as long as a job may run (``timeout``, the
container's limit) plus one heartbeat window (``visibility_timeout``) for the
image pull, the result's write and the message's delete around it. An engine
that kills sooner (Kubernetes' terminationGracePeriodSeconds, an Auto Scaling
lifecycle hook) cuts a job short; its message comes back only after its
visibility window, and the work is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds past the drain for the hand-back, the last log lines and the exit.
EXIT_MARGIN = 30


@dataclass(frozen=True)
class Drain:
    """The runner's stop, in seconds, from the config keys that bound it."""

    timeout: int
    visibility_timeout: int
    grace_period: int | None = None

    @property
    def seconds(self) -> int:
        """The longest a drain takes: what ``--grace-period`` is set to on a fleet."""
        if self.grace_period is not None:
            return self.grace_period
        return self.timeout + self.visibility_timeout

    @property
    def kill_after(self) -> int:
        """What an engine must wait before it kills the runner (the drain and a margin)."""
        return self.seconds + EXIT_MARGIN
