"""Runner processes for fault tests: the real CLI in a subprocess, signalled and waited on.

``RunnerPool.start`` runs ``python -m opthub_runner_admin.cli <mode> --config ...``
with its log in a file (a pipe left unread could block a chatty runner), and at
the end of the test kills whatever still runs and removes every container those
processes created (found by the runner's own pid label, since the CLI cannot
add the test's label). ``wait_for`` is the bounded poll every fault test uses
instead of fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from opthub_runner_admin.executor.docker import LABEL_HOST, LABEL_PID, LABEL_RUNNER

#: Seconds between two looks at a condition.
POLL = 0.05


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = POLL
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def runner_containers(
    client: docker.DockerClient, pid: int, *, running: bool = False
) -> list[dict[str, Any]]:
    """Containers that the runner process ``pid`` on this host created."""
    filters: dict[str, Any] = {
        "label": [f"{LABEL_RUNNER}=1", f"{LABEL_HOST}={socket.gethostname()}", f"{LABEL_PID}={pid}"]
    }
    if running:
        filters["status"] = "running"
    found: list[dict[str, Any]] = client.api.containers(all=True, filters=filters)
    return found


@dataclass
class RunnerProcess:
    """One CLI runner in a subprocess; its stderr goes to ``log_path``."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    #: Set once the process was reaped: exit code and resource usage.
    returncode: int | None = None
    rusage: resource.struct_rusage | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float) -> int:
        """Reap the process within ``timeout`` seconds (fail otherwise); return its exit code.

        ``os.wait4`` rather than ``Popen.wait`` so that the child's own peak RSS is known.
        """
        if self.returncode is not None:
            return self.returncode
        try:
            wait_for(self.exited, timeout, f"runner pid {self.pid} to exit")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log ends with:\n{self.log()[-3000:]}") from None
        assert self.returncode is not None
        return self.returncode

    def exited(self) -> bool:
        """Whether the process has exited, reaping it if so (never waits)."""
        if self.returncode is not None:
            return True
        pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode
        self.rusage = usage
        return True

    @property
    def peak_rss_bytes(self) -> int:
        """The reaped process's peak resident set size (Linux reports KiB)."""
        assert self.rusage is not None, "wait() first"
        return int(self.rusage.ru_maxrss) * 1024

    def kill(self) -> None:
        """SIGKILL and reap (a zombie still counts as alive for a pid probe)."""
        if self.returncode is None:
            self.popen.kill()
            self.wait(10)


class RunnerPool:
    """Starts CLI runners for one test; ``cleanup()`` kills survivors and removes containers."""

    def __init__(self, workdir: Path, docker_client: docker.DockerClient) -> None:
        self._workdir = workdir
        self._docker = docker_client
        self.started: list[RunnerProcess] = []

    def start(
        self,
        mode: str,
        config_path: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> RunnerProcess:
        """``opthub-runner <mode> --config <config_path> [args]`` with HOME in the test's folder."""
        log_path = self._workdir / f"runner-{mode}-{len(self.started)}.log"
        command = [sys.executable, "-m", "opthub_runner_admin.cli", mode]
        with log_path.open("wb") as log_file:
            popen = subprocess.Popen(
                [*command, "--config", str(config_path), *args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOME": str(self._workdir), **(env or {})},
            )
        process = RunnerProcess(popen, log_path)
        self.started.append(process)
        return process

    def cleanup(self) -> None:
        for process in self.started:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.popen.send_signal(signal.SIGKILL)
                process.wait(10)
            for info in runner_containers(self._docker, process.pid):
                with contextlib.suppress(docker.errors.NotFound):
                    self._docker.api.remove_container(info["Id"], force=True)
