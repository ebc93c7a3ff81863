"""Orphan detection must see a dead-but-unreaped runner as gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from opthub_runner_admin.host.processes import pid_alive


def test_a_zombie_counts_as_gone_and_a_live_process_as_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        stat = Path(f"/proc/{child.pid}/stat")
        while ") Z " not in stat.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ") Z " in stat.read_text()  # exited, not yet reaped
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert pid_alive(os.getpid())
