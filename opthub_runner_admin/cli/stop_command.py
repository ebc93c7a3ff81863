"""``opthub-runner stop``: stop this user's runners on this machine, one competition or all."""

from __future__ import annotations

import time

import click

from .common import fail
from .runner_selection import BOTH, MODE_CHOICES, Selection, described
from .signals import signal_runner


@click.command()
@click.argument("mode", type=click.Choice(MODE_CHOICES), default=BOTH)
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
    selection = Selection(mode=mode, config_path=config_path, every=every)
    runners = selection.runners("stop")
    if not runners:
        click.echo(selection.none_found())
        return
    for runner in runners:
        click.echo(f"Stopping {described(runner)}{' now' if now else ''}...")
        signal_runner(runner.pid, twice=now)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    pids = {runner.pid for runner in runners}
    while any(r.pid in pids for r in selection.found()):
        if deadline is not None and time.monotonic() > deadline:
            fail("runners still running after the timeout: stop --now cancels their jobs", 1)
        time.sleep(0.2)
    click.echo("Stopped.")
