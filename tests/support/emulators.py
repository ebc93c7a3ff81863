"""The two local AWS emulators the suite runs against: moto, and MiniStack beside it.

moto is lenient where AWS is not (receipts, item sizes, parameter checks), so
the queue and store contracts and one end-to-end run of each queue kind also
run on MiniStack, written independently of moto. MiniStack pins its own
botocore, so ``scripts/setup.sh`` installs it into ``.venv-ministack`` (its
version pinned there) and it runs as a server from that environment, as moto
runs from ours. Nothing here needs pytest: ``benchmarks/soak.py`` starts the
same servers.
"""

from __future__ import annotations

import os
from pathlib import Path

from opthub_runner_admin.demo.stack import REGION, LocalServer, MotoServer

#: The repository's root (``.venv-ministack`` lives there).
ROOT = Path(__file__).resolve().parents[2]
#: Where ``scripts/setup.sh`` installs MiniStack; ``OPTHUB_MINISTACK_PYTHON`` overrides.
MINISTACK_PYTHON = ROOT / ".venv-ministack" / "bin" / "python"
#: The emulators by name, as ``--emulator`` and the test ids spell them.
EMULATORS = ("moto", "ministack")


def ministack_python() -> Path:
    return Path(os.environ.get("OPTHUB_MINISTACK_PYTHON", str(MINISTACK_PYTHON)))


class MiniStackUnavailable(RuntimeError):
    """MiniStack is not installed where the project's setup puts it."""


class MiniStackServer(LocalServer):
    """``python -m ministack`` from its own virtual environment, on one loopback port."""

    name = "ministack"
    ready_path = "/_ministack/health"

    def command(self) -> list[str]:
        python = ministack_python()
        if not python.exists():
            raise MiniStackUnavailable(
                f"MiniStack is not installed at {python}: run scripts/setup.sh"
            )
        return [str(python), "-m", "ministack"]

    def environment(self) -> dict[str, str]:
        return {
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": self.host,
            "MINISTACK_REGION": REGION,
            "LOG_LEVEL": "WARNING",
            # Its pid file goes to the temporary directory under the port's name.
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        }


def emulator(name: str) -> LocalServer:
    """A (not yet started) server of the emulator called ``name``."""
    if name == "moto":
        return MotoServer()
    if name == "ministack":
        return MiniStackServer()
    raise ValueError(f"unknown emulator {name!r}: one of {', '.join(EMULATORS)}")
