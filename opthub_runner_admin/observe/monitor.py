"""Everything a running runner shows, assembled from the config and started together.

It reads its settings through ``MonitorSettings``, which the operator's
``Config`` satisfies, so that ``observe/`` does not import the config that
joins it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from ..queue.base import QueueStats
from .board import StatusBoard
from .events import Fanout
from .logs import JobLog
from .metrics import RunnerMetrics
from .retention import RetentionWatch
from .server import MonitorServer, health_check
from .status import StatusReporter

log = logging.getLogger(__name__)


class MonitorSettings(Protocol):
    """The keys the monitor reads: ``ObserveKeys`` and the job time limit (``timeout``)."""

    @property
    def slow_job_warning(self) -> int: ...

    @property
    def status_interval(self) -> int: ...

    @property
    def metrics_port(self) -> int | None: ...

    @property
    def metrics_host(self) -> str: ...

    @property
    def health_stall_seconds(self) -> int: ...

    @property
    def timeout(self) -> int: ...


class Monitor:
    """The observers of one runner, its status thread and (with ``metrics_port``) its port.

    ``events`` is what the worker, the executor and the login report to.
    ``stats`` reads the queue's counts as every runner sees them (None if unknown).
    """

    def __init__(
        self,
        *,
        mode: str,
        config: MonitorSettings,
        stats: Callable[[], QueueStats | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.board = StatusBoard(slow_after=config.slow_job_warning, clock=clock)
        self.metrics = RunnerMetrics(mode=mode)
        self.events = Fanout(
            observers=[self.board, self.metrics, JobLog(mode=mode), RetentionWatch(mode=mode)]
        )
        self._reporter = StatusReporter(
            mode=mode,
            board=self.board,
            events=self.events,
            stats=stats,
            interval=config.status_interval,
        )
        self.server: MonitorServer | None = None
        if config.metrics_port is not None:
            stall = float(config.health_stall_seconds)
            self.server = MonitorServer(
                mode=mode,
                board=self.board,
                metrics=self.metrics,
                host=config.metrics_host,
                port=config.metrics_port,
                health=health_check(stall_after=stall, job_limit=config.timeout + stall),
            )

    def start(self) -> None:
        if self.server is not None:
            self.server.start()
            host, port = self.server.address
            log.info("status page, /metrics and /healthz on http://%s:%d/", host, port)
        self._reporter.start()

    def stop(self) -> None:
        self._reporter.stop()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
