"""``opthub-runner evaluator`` and ``scorer``: run one mode until stopped; ``logout``."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..config.schema import scope_of
from ..errors import ConfigError, FatalError, RunnerError, SetupError
from ..host import pidfiles
from ..runner.modes import Mode
from ..worker.keys import MAX_WORKERS
from .common import EXIT_CONFIG, EXIT_FATAL, fail, naming_the_file, read_config
from .signals import install_pause_handlers, install_signal_handlers

if TYPE_CHECKING:
    from ..auth.credentials import Credentials

log = logging.getLogger("opthub_runner_admin")


#: Printed before the login prompt, word for word as the published README shows it.
ADMIN_NOTE = "Note: Make sure to authenticate using the competition administrator's account."


def prompt_credentials() -> Credentials:
    """Ask the administrator at the terminal, the password hidden, after the README's note."""
    from ..auth.credentials import Credentials, no_login

    click.echo(ADMIN_NOTE)
    try:
        username = str(click.prompt("Username", type=str)).strip()
        password = str(click.prompt("Password", type=str, hide_input=True))
    except click.Abort:
        raise no_login(" (the prompt was closed)") from None
    if not password:
        raise SetupError("no OptHub login: the password is empty (nothing was tried)")
    return Credentials(username=username, password=password)


def ask_password_again(username: str) -> Credentials:
    """The login ended: ring the terminal's bell and ask the named account's password again.

    Asked while the runner goes on (its log lines may pass between); an empty
    answer asks again, a closed terminal ends the asking.
    """
    from ..auth.credentials import Credentials

    click.echo(
        f"\a\nThe OptHub login of {username} has ended: type its password to go on"
        " (no new job is taken until then).",
        err=True,
    )
    while True:
        try:
            password = str(click.prompt(f"Password for {username}", type=str, hide_input=True))
        except click.Abort:
            raise SetupError("the terminal was closed") from None
        if password:
            return Credentials(username=username, password=password)


def run_mode(
    mode: Mode,
    config_path: str,
    dev: bool,
    *,
    workers: int | None = None,
    num: int | None = None,
    grace_period: int | None = None,
) -> None:
    config = read_config(config_path)
    if workers is not None:
        config = dataclasses.replace(config, workers=workers)
    if num is not None:
        config = dataclasses.replace(config, num=num)
    if grace_period is not None:
        config = dataclasses.replace(config, grace_period=grace_period)
    from ..runner.assembly import build_monitor, build_worker
    from ..runner.instance_hooks import instance_events, watch_spot
    from ..runner.parts import Options
    from ..worker.hold import Holds

    try:
        scope = scope_of(mode.name, config)  # first: names a missing queue URL by its key
        monitor = build_monitor(mode, config)
        holds = Holds(name=mode.name, events=monitor.events)
        with contextlib.ExitStack() as resources:
            events = instance_events(config, monitor.events, resources)
            options = Options(
                dev=dev,
                prompt=prompt_credentials,
                events=events,
                holds=holds,
                # Only where someone can type it: under systemd stdin is /dev/null.
                ask_again=ask_password_again if sys.stdin.isatty() else None,
            )
            worker = build_worker(mode, config, options, resources)
            install_signal_handlers(worker)
            install_pause_handlers(holds)
            watch_spot(config, worker, resources)
            with pidfiles.registered(mode.name, scope) as pid_path, monitor:
                holds.listen(lambda on: pidfiles.write_state(pid_path, scope, ", ".join(on)))
                stats = worker.run()
    except (ConfigError, SetupError) as exc:
        fail(naming_the_file(str(exc), config_path), EXIT_CONFIG)
    except FatalError as exc:
        fail(naming_the_file(str(exc), config_path), EXIT_FATAL)
    except RunnerError as exc:
        # Transient or administrator trouble before the first job (Cognito or
        # the API unreachable at start): nothing was taken, so stop and say why.
        fail(
            naming_the_file(
                f"{exc} (nothing was processed; start the runner again when this is fixed)",
                config_path,
            ),
            EXIT_FATAL,
        )
    except KeyboardInterrupt:
        fail("interrupted before the runner was ready", EXIT_FATAL)
    except OSError as exc:
        fail(f"cannot serve the status page and metrics: {exc} (check metrics_port)", EXIT_FATAL)
    log.info("%s stopped: %s", mode.name, stats.summary())


def mode_command(mode: Mode) -> Callable[..., Any]:
    @click.option(
        "--config",
        "config_path",
        default="config.yml",
        show_default=True,
        help="YAML configuration file.",
    )
    @click.option("--dev", is_flag=True, help="Use OptHub's development stack.")
    @click.option(
        "--workers",
        type=click.IntRange(1, MAX_WORKERS),
        default=None,
        help="Jobs run at once (overrides 'workers' in the config file; default 1).",
    )
    @click.option(
        "--num",
        type=click.IntRange(min=0),
        default=None,
        help="Stop after this many finished jobs (overrides 'num'; 0 = never).",
    )
    @click.option(
        "--grace-period",
        type=click.IntRange(0),
        default=None,
        help="Seconds a stop lets the running jobs finish (overrides 'grace_period';"
        " the systemd unit sets it below its TimeoutStopSec).",
    )
    def command(
        config_path: str, dev: bool, workers: int | None, num: int | None, grace_period: int | None
    ) -> None:
        run_mode(mode, config_path, dev, workers=workers, num=num, grace_period=grace_period)

    command.__doc__ = (
        f"{mode.summary}\n\n"
        "Runs until stopped (Ctrl-C or SIGTERM drain; a second one cancels the running jobs).\n\n"
        f"\b\nExample:\n  opthub-runner {mode.name} --config config.yml --workers 2"
    )
    return command


@click.command()
def logout() -> None:
    """Forget the administrator's tokens cached on this machine.

    \b
    Example:
      opthub-runner logout
    """
    from ..auth.token_file import remove_token_cache

    removed = remove_token_cache()
    click.echo("Logged out." if removed else "No cached login to remove.")
