"""A warning in the log when the runner has been paused for long.

SQS deletes a message once it is older than the queue's retention period (4
days by default), taken or not: a pause of days loses the trials submitted
before it. The status line says for how long the runner is paused; this says
it at WARNING level once a pause has lasted ``LONG_PAUSE`` seconds, and again
every ``LONG_PAUSE`` seconds after.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..fleet.queue_counts import age_text
from .holds import PAUSED, Hold

log = logging.getLogger(__name__)

#: Seconds of pause after which (and every which after) the log warns.
LONG_PAUSE = 12 * 3600.0


class LongPauseWarning:
    """Called with the holds at every status tick; warns once per ``after`` seconds of pause."""

    def __init__(self, *, mode: str, after: float = LONG_PAUSE) -> None:
        self._mode = mode
        self._after = after
        self._warned: tuple[float, int] = (0.0, 0)

    def check(self, holds: Mapping[str, Hold], now: float) -> bool:
        """Warn if the pause reached one more ``after``; True if it did now."""
        pause = holds.get(PAUSED)
        if pause is None:
            return False
        periods = int((now - pause.since) // self._after)
        since, warned = self._warned
        if since != pause.since:
            warned = 0
        if periods <= warned:
            return False
        self._warned = (pause.since, periods)
        log.warning(
            "%s: paused for %s: SQS deletes a message once it is older than the queue's"
            " retention period (4 days by default), taken or not; resume soon"
            " (opthub-runner resume)",
            self._mode,
            age_text(now - pause.since),
        )
        return True
