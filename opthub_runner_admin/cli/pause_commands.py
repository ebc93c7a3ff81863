"""``opthub-runner pause`` and ``resume``: hold one competition's runners for maintenance.

A paused runner finishes its running jobs, takes no new one and removes its
containers started ahead; it keeps its login, page and metrics, and says
"paused" in the log, the status line, the page, ``/healthz`` and the metric
``opthub_runner_paused``. The commands signal the runners of this machine
(SIGUSR1, SIGUSR2) and wait until each runner's pid file says it heard.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import click

from ..host import pidfiles
from ..observe.holds import PAUSED
from .common import fail
from .runner_selection import BOTH, MODE_CHOICES, Selection, described
from .signals import PAUSE_SIGNAL, RESUME_SIGNAL

#: Seconds a runner has to say in its pid file that it heard the signal.
CONFIRM_SECONDS = 10.0


def _options(verb: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option(
            "--all",
            "every",
            is_flag=True,
            help=f"{verb.capitalize()} the runners of every competition on this machine.",
        )(command)
        command = click.option(
            "--config",
            "config_path",
            help=f"{verb.capitalize()} only the runners of this config's queue and table.",
        )(command)
        return click.argument("mode", type=click.Choice(MODE_CHOICES), default=BOTH)(command)

    return decorate


def _paused(runner: pidfiles.RunningRunner) -> bool:
    return PAUSED in runner.state.split(", ")


def _signal_all(
    selection: Selection, verb: str, signum: signal.Signals, done: Callable[[bool], bool]
) -> list[pidfiles.RunningRunner]:
    """Signal the selected runners and wait until each pid file says ``done``."""
    runners = selection.runners(verb)
    if not runners:
        click.echo(selection.none_found())
        return []
    older = [r for r in runners if not r.pausable]
    if older:
        fail(
            f"{described(older[0])} is of an earlier version, which has no pause (the signal"
            f" would end it): nothing was signalled; stop it and start it again to {verb} it",
            1,
        )
    for runner in runners:
        os.kill(runner.pid, signum)
    pids = {runner.pid for runner in runners}
    deadline = time.monotonic() + CONFIRM_SECONDS
    while True:
        now = {r.pid: r for r in selection.found() if r.pid in pids}
        if all(done(_paused(r)) for r in now.values()):
            return list(now.values())
        if time.monotonic() > deadline:
            late = ", ".join(str(pid) for pid, r in now.items() if not done(_paused(r)))
            fail(
                f"runner pid {late} did not confirm within {CONFIRM_SECONDS:.0f} s (an older"
                " version, or its pid file cannot be written): see its log",
                1,
            )
        time.sleep(0.1)


@click.command()
@_options("pause")
def pause(mode: str, config_path: str | None, every: bool) -> None:
    """Pause runners for maintenance: they finish their running jobs and take no new one.

    Each keeps its login, status page and metrics, and removes its containers
    started ahead; `opthub-runner resume` goes on. Messages wait in the queue
    meanwhile: SQS deletes a message after the queue's retention period (4 days
    by default), so keep a pause well below it. Selects like `stop`.

    \b
    Example:
      opthub-runner pause --config /etc/opthub-runner/compA.yml
    """
    selection = Selection(mode=mode, config_path=config_path, every=every)
    for runner in _signal_all(selection, "pause", PAUSE_SIGNAL, lambda paused: paused):
        click.echo(
            f"Paused {described(runner)}: its running jobs finish, it takes no new one"
            " (opthub-runner resume goes on)."
        )


@click.command()
@_options("resume")
def resume(mode: str, config_path: str | None, every: bool) -> None:
    """Resume paused runners: they take new jobs again.

    \b
    Example:
      opthub-runner resume --config /etc/opthub-runner/compA.yml
    """
    selection = Selection(mode=mode, config_path=config_path, every=every)
    for runner in _signal_all(selection, "resume", RESUME_SIGNAL, lambda paused: not paused):
        left = f" (still: {runner.state})" if runner.state else ""
        click.echo(f"Resumed {described(runner)}{left}.")
