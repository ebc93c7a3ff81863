"""``opthub-runner stop``: stop this user's runners on this machine, one competition or all."""

from __future__ import annotations

import contextlib
import time

import click

from ..config.loading import load_config
from ..config.schema import scope_of
from ..errors import ConfigError
from ..host import pidfiles
from ..model import RunnerScope
from ..runner.modes import MODES
from .common import EXIT_CONFIG, EXIT_USAGE, fail
from .signals import signal_runner

#: Both modes; "all" is its old name, kept working (``--all`` means every competition).
BOTH = "both"


@click.command()
@click.argument("mode", type=click.Choice([*(m.name for m in MODES), BOTH, "all"]), default=BOTH)
@click.option(
    "--config",
    "config_path",
    help="Stop only the runners of this config's queue and table (one competition).",
)
@click.option(
    "--all", "every", is_flag=True, help="Stop the runners of every competition on this machine."
)
@click.option("--now", is_flag=True, help="Cancel running jobs (their messages go back at once).")
@click.option(
    "--timeout", default=0.0, help="Seconds to wait for the runners to exit (0 = forever)."
)
def stop(mode: str, config_path: str | None, every: bool, now: bool, timeout: float) -> None:
    """Stop this user's runners on this machine as SIGTERM does: finish the job, then exit.

    MODE is evaluator, scorer or both (the default; "all" is an old name for
    both modes, not for --all). With --config, only the runners of that
    config's queue and table; without it, every runner of this user when they
    all write one table, else --all (every competition on this machine) is needed.

    \b
    Example:
      opthub-runner stop --config /etc/opthub-runner/compA.yml
    """
    if config_path is not None and every:
        fail("give --config or --all, not both", EXIT_USAGE)
    mode = BOTH if mode == "all" else mode
    scopes = _stop_scopes(mode, config_path)
    modes = None if mode == BOTH else mode

    def found() -> list[pidfiles.RunningRunner]:
        return pidfiles.running(modes, scopes=scopes)

    runners = found()
    if not runners:
        where = f" for {config_path}" if config_path else ""
        click.echo(f"No running opthub-runner found on this machine{where}.")
        return
    tables = sorted({r.scope.table_name if r.scope else "?" for r in runners})
    if scopes is None and len(tables) > 1 and not every:
        fail(
            f"runners of {len(tables)} tables run on this machine ({', '.join(tables)}): pass"
            " --config with the config.yml of the competition to stop, or --all to stop them all",
            EXIT_USAGE,
        )
    for runner in runners:
        served = f", {runner.scope.describe()}" if runner.scope else ""
        click.echo(f"Stopping {runner.mode} (pid {runner.pid}{served}){' now' if now else ''}...")
        signal_runner(runner.pid, twice=now)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    pids = {runner.pid for runner in runners}
    while any(r.pid in pids for r in found()):
        if deadline is not None and time.monotonic() > deadline:
            fail("runners still running after the timeout: stop --now cancels their jobs", 1)
        time.sleep(0.2)
    click.echo("Stopped.")


def _stop_scopes(mode: str, config_path: str | None) -> frozenset[RunnerScope] | None:
    """The queue and table pairs that ``stop --config`` selects (None: any)."""
    if config_path is None:
        return None
    try:
        config = load_config(config_path).config
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    modes = tuple(m.name for m in MODES) if mode == BOTH else (mode,)
    scopes: set[RunnerScope] = set()
    for each in modes:
        with contextlib.suppress(ConfigError):  # a config for one mode only
            scopes.add(scope_of(each, config))
    if not scopes:
        fail(f"{config_path}: no queue URL for the {mode} to stop", EXIT_CONFIG)
    return frozenset(scopes)
