"""Which of this user's runners on this machine a command means: one competition, or all.

``stop``, ``pause`` and ``resume`` select alike: with ``--config``, the runners
of that config's queue and table; without it, every runner when they all
write one table, else ``--all`` is needed (several competitions run here).
"""

from __future__ import annotations

import contextlib

from ..config.loading import load_config
from ..config.schema import Config, scope_of
from ..errors import ConfigError
from ..host import pidfiles
from ..model import RunnerScope
from ..runner.modes import MODES
from .common import EXIT_CONFIG, EXIT_USAGE, fail

#: Both modes; "all" is its old name, kept working (``--all`` means every competition).
BOTH = "both"
#: The MODE argument's choices: one mode, or both.
MODE_CHOICES = [*(m.name for m in MODES), BOTH, "all"]


class Selection:
    """The runners ``mode``, ``--config`` and ``--all`` select; ``found()`` looks again."""

    def __init__(self, *, mode: str, config_path: str | None, every: bool) -> None:
        if config_path is not None and every:
            fail("give --config or --all, not both", EXIT_USAGE)
        self.mode = BOTH if mode == "all" else mode
        self.config_path = config_path
        self.every = every
        self._scopes = selected_scopes(self.mode, config_path)

    def found(self) -> list[pidfiles.RunningRunner]:
        return pidfiles.running(None if self.mode == BOTH else self.mode, scopes=self._scopes)

    def runners(self, verb: str) -> list[pidfiles.RunningRunner]:
        """The selected runners; one line and exit 2 when several competitions need a choice."""
        runners = self.found()
        tables = sorted({r.scope.table_name if r.scope else "?" for r in runners})
        if self._scopes is None and len(tables) > 1 and not self.every:
            fail(
                f"runners of {len(tables)} tables run on this machine ({', '.join(tables)}): pass"
                f" --config with the config.yml of the competition to {verb}, or --all to {verb}"
                " them all",
                EXIT_USAGE,
            )
        return runners

    def none_found(self) -> str:
        where = f" for {self.config_path}" if self.config_path else ""
        return f"No running opthub-runner found on this machine{where}."


def selected_scopes(mode: str, config_path: str | None) -> frozenset[RunnerScope] | None:
    """The queue and table pairs that ``--config`` selects (None: any)."""
    if config_path is None:
        return None
    try:
        config = load_config(config_path).config
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    scopes = fleet_scopes(config, None if mode in (BOTH, "all") else mode)
    if not scopes:
        fail(f"{config_path}: no queue URL for the {mode}", EXIT_CONFIG)
    return scopes


def described(runner: pidfiles.RunningRunner) -> str:
    """``evaluator (pid 12, queue ..., table ...)`` as the commands print a runner."""
    served = f", {runner.scope.describe()}" if runner.scope else ""
    return f"{runner.mode} (pid {runner.pid}{served})"


def local_runner_lines(scopes: frozenset[RunnerScope] | None) -> list[str]:
    """This machine's runners of ``scopes`` (None: all), each with what it does now.

    Runners on other hosts write their pid files there: the queue's in-flight
    count is all this machine sees of them (their own status line, page and
    metrics say whether they are paused).
    """
    runners = pidfiles.running(None, scopes=scopes)
    lines = ["", f"on this machine ({pidfiles.state_dir()}):"]
    if not runners:
        return [*lines, "  no runner"]
    for runner in runners:
        state = runner.state.upper() if runner.state else "taking jobs"
        lines.append(f"  {described(runner)}: {state}")
    return lines


def fleet_scopes(config: Config, mode: str | None = None) -> frozenset[RunnerScope]:
    """The scopes of ``mode`` (None: every mode) whose queue ``config`` names."""
    modes = [m.name for m in MODES] if mode is None else [mode]
    scopes: set[RunnerScope] = set()
    for each in modes:
        with contextlib.suppress(ConfigError):  # a config for one mode only
            scopes.add(scope_of(each, config))
    return frozenset(scopes)
