"""The Spot interruption notice, watched (``spot_interruption_watch``): drain at once.

EC2 gives a Spot instance about two minutes. When the notice appears the
runner stops taking messages at once (the first stop, as on SIGTERM) and
lets its jobs run until ``HAND_BACK_MARGIN`` seconds before the announced
time; then it cancels those still running, which hands their messages back
to the queue at once (another runner takes them), rather than leaving them
invisible for their whole heartbeat window after the instance is gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from ..errors import RunnerError
from ..host.instance_metadata import SpotNotice

log = logging.getLogger("opthub_runner_admin")

#: Seconds between two reads of the notice (AWS suggests every 5 seconds).
CHECK_SECONDS = 5.0
#: Seconds before the announced time by which the unfinished jobs are handed back.
HAND_BACK_MARGIN = 30.0


class NoticeSource(Protocol):
    def spot_notice(self) -> SpotNotice | None: ...


class Stoppable(Protocol):
    def stop(self, *, force: bool = False) -> None: ...


class SpotWatch:
    """A thread that reads the notice and drains ``worker`` when it comes."""

    def __init__(
        self,
        *,
        source: NoticeSource,
        worker: Stoppable,
        check_seconds: float = CHECK_SECONDS,
        margin: float = HAND_BACK_MARGIN,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._source = source
        self._worker = worker
        self._check = check_seconds
        self._margin = margin
        self._now = now
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.notice: SpotNotice | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="spot-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(10)

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                notice = self._source.spot_notice()
            except RunnerError as exc:
                log.warning("Spot interruption notice unreadable: %s", exc)
                notice = None
            if notice is not None:
                self._drain(notice)
                return
            self._done.wait(self._check)

    def _drain(self, notice: SpotNotice) -> None:
        self.notice = notice
        left = (notice.time - self._now()).total_seconds() - self._margin
        log.warning(
            "Spot interruption notice: %s at %s; taking no more messages, handing back"
            " what is still running in %.0f s",
            notice.action,
            notice.time.isoformat(),
            max(left, 0.0),
        )
        self._worker.stop()
        if self._done.wait(max(left, 0.0)):
            return
        log.warning("Spot interruption: handing back the unfinished jobs")
        self._worker.stop(force=True)
