"""One container's run, from its start to its exit, its timeout or a cancel.

The container exists and its streams are attached (``streams.Attachment``)
before it is handed here, so that no early output is lost; a container
started ahead of its job (``warm``) is handed already running. What this
reads of the run (exit code, output, the kernel's memory kill, the cgroup's
figures) becomes the seam's ``Execution``; what happens to the container
afterwards (removal, keeping it) is the executor's business.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import docker.errors

from ..base import Cancelled, Execution, RunSpec
from ..exits import memory_limit_kill, outside_signal
from ..usage import TrialUsage
from .cgroups import Figures, UsageMeter, UsageWatch, finish
from .errors import explanation
from .streams import ExitWaiter, StdinWriter
from .warm import LiveContainer

log = logging.getLogger(__name__)

#: How often the waiting thread looks at the cancel flag and the deadline (seconds).
POLL_INTERVAL = 0.2


class ContainerSupervisor:
    """Starts (if need be), feeds, waits for and reads one container at a time per call.

    ``stop_timeout`` is how long to wait for a killed container to exit and
    for its output to drain; ``meter`` reads the cgroup's figures (None: not
    measured, ``measure_usage: false``). Thread-safe: each call holds its own
    container.
    """

    def __init__(self, *, api: Any, stop_timeout: float, meter: UsageMeter | None) -> None:
        self._api = api
        self._stop_timeout = stop_timeout
        self._meter = meter

    def run(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        container: LiveContainer,
        on_started: Callable[[], None] | None = None,
    ) -> Execution:
        """The run's ``Execution``; ``Cancelled`` once ``cancel`` is set (container killed)."""
        name, sock, reader = container.name, container.attachment.sock, container.attachment.reader
        started_at = _now()
        from_start = container.started
        if not container.started:
            self._api.start(name)
            if on_started is not None:
                on_started()
        watch = self._usage_watch(container)
        input_at = time.monotonic()
        deadline = input_at + spec.timeout
        if spec.deadline is not None:
            deadline = min(deadline, spec.deadline)
        StdinWriter(sock, spec.stdin_lines).start()
        waiter = ExitWaiter(self._api, name, spec.timeout + self._stop_timeout)
        waiter.start()
        try:
            timed_out = self._await_exit(spec, cancel, name, waiter, deadline)
        finally:
            wall = time.monotonic() - input_at
            figures = finish(watch)
        finished_at = _now()
        if timed_out:
            waiter.done.wait(self._stop_timeout)
            exit_code = None
        else:
            exit_code = waiter.result()
        reader.finish(sock, self._stop_timeout)
        stdout, stderr = reader.stdout.snapshot(), reader.stderr.snapshot()
        docker_says, memory_limit = self._memory_state(name)
        oom_killed = memory_limit_kill(
            docker_says=docker_says,
            kills=figures.memory_kills,
            peak=figures.peak_memory,
            limit=memory_limit,
        )
        # The runner's only kills are the timeout's and the cancel's (which raised above).
        killed = outside_signal(exit_code, killed_by_runner=timed_out, oom_killed=oom_killed)
        usage = _usage(figures, wall, from_start, memory_limit if oom_killed else None)
        log.debug(
            "container %s of %s ended: exit %s%s",
            name,
            spec.image,
            exit_code,
            " (killed for memory)" if oom_killed else "",
        )
        return Execution(
            exit_code=exit_code,
            stdout=stdout[0],
            stderr=stderr[0],
            timed_out=timed_out,
            started_at=started_at,
            finished_at=finished_at,
            stdout_truncated=stdout[1],
            stderr_truncated=stderr[1],
            oom_killed=oom_killed,
            memory_limit=memory_limit,
            outside_signal=killed,
            usage=usage,
        )

    def _usage_watch(self, container: LiveContainer) -> UsageWatch | Figures:
        """Start reading the container's figures (it runs now), or say why they are not read."""
        if self._meter is None:
            return Figures(None, None, "not measured: turned off (measure_usage: false)")
        return self._meter.start(container.container_id)

    def _memory_state(self, name: str) -> tuple[bool, int | None]:
        """Whether Docker says the memory limit killed a process of it, and the limit.

        Read from ``docker inspect`` before the container is removed: the exit
        code alone (137) cannot tell a memory kill from our own timeout kill.
        """
        try:
            info = self._api.inspect_container(name)
        except docker.errors.NotFound:
            return False, None  # removed behind our back: nothing to tell
        oom_killed = bool((info.get("State") or {}).get("OOMKilled"))
        memory = (info.get("HostConfig") or {}).get("Memory") or 0
        return oom_killed, int(memory) or None

    def _await_exit(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        name: str,
        waiter: ExitWaiter,
        deadline: float,
    ) -> bool:
        """Block until exit (False), the deadline (True, container killed) or a cancel."""
        while not waiter.done.wait(POLL_INTERVAL):
            if cancel.is_set():
                log.info("cancelling container %s of %s", name, spec.image)
                self._kill(name)
                raise Cancelled(f"run of {spec.image} cancelled")
            if time.monotonic() >= deadline:
                log.warning(
                    "container %s of %s timed out after %ss: killing it",
                    name,
                    spec.image,
                    spec.timeout,
                )
                self._kill(name)
                return True
        return False

    def _kill(self, name: str) -> None:
        """SIGKILL, not SIGTERM: an image that ignores SIGTERM must still end."""
        try:
            self._api.kill(name, signal="SIGKILL")
        except docker.errors.APIError as exc:
            if exc.is_server_error():
                raise
            log.debug("kill %s: %s", name, explanation(exc))  # already exited or gone


def _usage(figures: Figures, wall: float, from_start: bool, killed_at: int | None) -> TrialUsage:
    """The run's figures; a run killed for memory reached its limit ``killed_at``.

    The kernel kills at the limit, and the cgroup is gone before the last
    moments of a fast allocation could be read: the limit is the peak.
    """
    peak = figures.peak_memory
    if killed_at is not None:
        peak = max(peak or 0, killed_at)
    return TrialUsage(
        wall_seconds=wall,
        peak_memory=peak,
        cpu_seconds=figures.cpu_seconds,
        not_measured=figures.not_measured,
        from_start=from_start,
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)
