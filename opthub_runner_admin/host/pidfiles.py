"""Which runners run on this machine, so that ``opthub-runner stop`` can find them.

Each runner writes ``<mode>-<pid>.pid`` in a state folder and removes it when
it exits. A file whose process is gone (after a crash or SIGKILL), or whose pid
now belongs to another program, is ignored and cleaned up, so that ``stop``
never signals a stranger. The file names the runner's queue and table
(``queue=`` and ``table=`` lines after the pid), so that ``stop --config``
stops one competition's runners and leaves the others of the same user alone;
a file without them (a runner of an earlier version) has no scope. A
``state=`` line says why the runner takes no new job (``paused``, ``login
needed``; empty while it works), for ``opthub-runner status`` and ``pause``;
a file without one is a runner of an earlier version, which has no pause
(the signal would end it).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..model import RunnerScope
from .processes import PidState, pid_state

log = logging.getLogger(__name__)


def state_dir() -> Path:
    """``$XDG_RUNTIME_DIR/opthub-runner``, else ``~/.local/state/opthub-runner``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "opthub-runner"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "opthub-runner"


@dataclass(frozen=True)
class RunningRunner:
    mode: str
    pid: int
    path: Path
    #: None for the pid file of a runner of an earlier version.
    scope: RunnerScope | None = None
    #: Why it takes no new job ("paused", "login needed", joined by ", "); "" while it works.
    state: str = ""
    #: Whether it can be paused (False: a runner of an earlier version).
    pausable: bool = False


@contextlib.contextmanager
def registered(
    mode: str, scope: RunnerScope | None = None, folder: Path | None = None
) -> Iterator[Path]:
    """Announce this process as a running ``mode`` runner for the duration of the block."""
    folder = folder or state_dir()
    path = folder / f"{mode}-{os.getpid()}.pid"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(_text(scope, ""), encoding="utf-8")
    except OSError as exc:
        # Only `opthub-runner stop` reads it: the runner's work does not depend on it.
        log.warning(
            "cannot write the pid file %s (%s); 'opthub-runner stop' will not find this runner:"
            " stop it with kill -TERM %d, and free space on or allow writes to %s",
            path,
            exc.strerror or exc,
            os.getpid(),
            folder,
        )
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _text(scope: RunnerScope | None, state: str) -> str:
    text = f"{os.getpid()}\n"
    if scope is not None:
        text += f"queue={scope.queue_url}\ntable={scope.table_name}\n"
    return text + f"state={state}\n"


def write_state(path: Path, scope: RunnerScope | None, state: str) -> None:
    """Say in this runner's pid file why it takes no new job ("" while it works).

    Replaced atomically, so that ``stop`` and ``status`` never read half a file;
    not written again once removed (the runner stops).
    """
    if not path.exists():
        return
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(_text(scope, state), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("cannot write the state to the pid file %s (%s)", path, exc.strerror or exc)


def running(
    mode: str | None = None,
    folder: Path | None = None,
    scopes: frozenset[RunnerScope] | None = None,
) -> list[RunningRunner]:
    """The live runners of ``mode`` (or all), of ``scopes`` (or any), dropping stale files."""
    folder = folder or state_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.pid")):
        name, _, pid_text = path.stem.rpartition("-")
        if mode is not None and name != mode:
            continue
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if not _is_runner(pid):
            path.unlink(missing_ok=True)
            continue
        scope, state = _read_fields(path)
        runner = RunningRunner(name, pid, path, scope, state or "", pausable=state is not None)
        if scopes is None or runner.scope in scopes:
            found.append(runner)
    return found


def _read_fields(path: Path) -> tuple[RunnerScope | None, str | None]:
    """The scope and the state of a pid file (None: an earlier version's file)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None, None
    fields = dict(line.partition("=")[::2] for line in lines[1:] if "=" in line)
    state = fields.get("state")
    if not fields.get("queue") or not fields.get("table"):
        return None, state
    return RunnerScope(queue_url=fields["queue"], table_name=fields["table"]), state


def _is_runner(pid: int) -> bool:
    """Alive, ours to signal, and still an opthub-runner (a recycled pid must not be signalled)."""
    if pid_state(pid) is not PidState.OURS:
        return False  # gone, a zombie, or someone else's process: not ours to stop
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid file
    return b"opthub" in cmdline
