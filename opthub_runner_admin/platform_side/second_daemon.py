"""``scripts/second-dockerd.sh``, run with a caller's own state, data root, bridge and subnet.

The two-daemon test and ``benchmarks/soak.py`` each start a second Docker
daemon beside the machine's own (never touching it); each passes names no
other user of the script picks, so that both may run at once.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "second-dockerd.sh"


def second_dockerd(
    action: str, env: Mapping[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``second-dockerd.sh start|stop`` with ``env`` (its ``OPTHUB_BENCH_*`` names)."""
    return subprocess.run(
        ["bash", str(SCRIPT), action],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
