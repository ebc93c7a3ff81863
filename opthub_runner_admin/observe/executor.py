"""An executor that reports its containers to the observers, around the real one."""

from __future__ import annotations

import threading
import time

from ..executor import Execution, Executor, RunSpec
from .events import JobEvents, environment_values
from .usage import ContainerUsage


class ObservedExecutor:
    """Wraps the executor ``runner.assembly.build_executor`` made; runs exactly what it is given."""

    def __init__(self, *, executor: Executor, events: JobEvents) -> None:
        self._executor = executor
        self._events = events

    def run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        self._events.container_started(spec.image, environment_values(spec.environment))
        started = time.monotonic()
        try:
            execution = self._executor.run(spec, cancel)
            self._events.container_used(spec.image, ContainerUsage.of(spec, execution))
            return execution
        finally:
            self._events.container_finished(spec.image, time.monotonic() - started)
