"""Whether a pid still names a live process on this host.

Shared by the orphan reaper (a container whose runner pid is gone may be
removed) and the pid files of ``opthub-runner stop`` (a file whose pid is gone
is stale): both must see a dead-but-unreaped runner (a zombie) as gone.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path


class PidState(enum.Enum):
    GONE = "gone"
    #: Alive and ours to signal.
    OURS = "ours"
    #: Alive but another user's process (signal 0 was refused).
    FOREIGN = "foreign"


def pid_state(pid: int) -> PidState:
    """Probe ``pid`` with signal 0 (which kills nothing); a zombie counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return PidState.GONE
    except PermissionError:
        return PidState.FOREIGN
    return PidState.GONE if _zombie(pid) else PidState.OURS


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host, whoever owns it."""
    return pid_state(pid) is not PidState.GONE


def _zombie(pid: int) -> bool:
    """A dead runner its parent has not reaped yet still answers signal 0."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS) or gone meanwhile: trust signal 0
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z"


def pid_namespace() -> str | None:
    """This process's pid namespace (``pid:[4026531836]``), None without ``/proc``.

    A pid names a process only within its namespace: a runner in a container
    of its own (``docker run`` without ``--pid host``) sees none of the host's
    processes, so a host runner's live pid would look dead to it, and the
    other way round. Two runners judge each other's pids only when this
    string is the same for both.
    """
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
