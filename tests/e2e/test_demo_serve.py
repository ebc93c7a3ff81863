"""``opthub-runner demo --serve`` as a newcomer uses it: a subprocess, then other commands on it.

Started as the operator would, it prints a config and the page's address;
``doctor``, ``status`` and ``evaluator --num 1`` then run against that config
as separate processes (a second runner joining the demo's fleet). SIGINT, as
Ctrl-C sends, must stop it all: no process, no container, no temp folder.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.demo.serve import INDICATOR_IMAGE, PROBLEM_IMAGE
from opthub_runner_admin.executor.docker import LABEL_PID
from tests.e2e.test_demo_cli import processes_in
from tests.support.docker_fixtures import images_left_as_found

#: Longest wait for the demo to print its config (images, moto, two runners).
READY_TIMEOUT = 180.0
SERVE_ARGS = ("--port", "0", "--every", "1")
_CONFIG = re.compile(r"^\s*config: (\S+)$")
_PAGE = re.compile(r"^\s*status page: (http://\S+)$")
_STOPPED = re.compile(
    r"evaluator stopped: (\d+) done, (\d+) failed, (\d+) dropped, (\d+) retried, "
    r"(\d+) went back unstarted"
)


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Demo:
    """The ``demo --serve`` subprocess and the lines it printed so far."""

    def __init__(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opthub_runner_admin.cli", "demo", "--serve", *SERVE_ARGS],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.seen.append(line)
            found = pattern.match(line)
            if found:
                return found.group(1)
        pytest.fail("demo --serve printed no such line:\n" + "\n".join(self.seen[-40:]))

    def children(self) -> list[int]:
        """Pids whose parent is the demo (its moto server)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found


@pytest.fixture
def served(
    tmp_path: Path, docker_client: docker.DockerClient, moto_of_its_own: None
) -> Iterator[Demo]:
    with images_left_as_found(docker_client, (PROBLEM_IMAGE, INDICATOR_IMAGE)):
        demo = Demo(tmp_path)
        try:
            yield demo
        finally:
            # A failed test must not leave the demo's moto server (its own session) behind.
            children = demo.children()
            if demo.process.poll() is None:
                demo.process.send_signal(signal.SIGINT)
                try:
                    demo.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    demo.process.kill()
                    demo.process.wait(timeout=30)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_demo_serve_keeps_a_stack_up_for_other_commands_and_ctrl_c_leaves_nothing(
    tmp_path: Path, served: Demo, docker_client: docker.DockerClient
) -> None:
    config = Path(served.wait_for(_CONFIG, READY_TIMEOUT))
    page = served.wait_for(_PAGE, 30)
    assert config.is_file() and oct(config.stat().st_mode & 0o777) == "0o600"
    with urllib.request.urlopen(page, timeout=10) as response:
        assert response.status == 200 and "opthub-runner" in response.read().decode()

    doctor = cli("doctor", "--config", str(config))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr

    status = cli("status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    row = next(line.split() for line in status.stdout.splitlines() if line.startswith("evaluator "))
    assert row[-1] == "1", status.stdout  # the dead letter the demo put there

    evaluator = cli("evaluator", "--config", str(config), "--num", "1")
    assert evaluator.returncode == 0, evaluator.stderr[-3000:]
    # The feeder makes every fifth solution malformed on purpose: the one job
    # this runner took ended either way, and nothing went back or was lost.
    stopped = _STOPPED.search(evaluator.stderr)
    assert stopped, evaluator.stderr[-3000:]
    done, failed, dropped, retried, unstarted = map(int, stopped.groups())
    assert (done + failed, dropped, retried, unstarted) == (1, 0, 0, 0), stopped.group(0)

    moto = served.children()
    assert moto, "the demo's moto server should be its child"
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=90) == 0, "\n".join(served.seen[-30:])

    assert not config.parent.exists()
    assert [pid for pid in moto if Path(f"/proc/{pid}").exists()] == []
    assert processes_in(tmp_path) == []
    left = docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_PID}={served.process.pid}"}
    )
    assert left == []
    assert os.listdir(tmp_path) == []  # the demo writes nothing where it was started
