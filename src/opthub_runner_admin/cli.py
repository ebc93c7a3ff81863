"""The ``opthub-runner`` command: parses arguments, wires the runner, handles signals.

Every failure an operator can meet ends here in one line on stderr and a
distinct exit code (2: configuration, 1: cannot run), never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

import click

from . import __version__, pidfiles
from .config import MAX_WORKERS, Config, ConfigError, load_config
from .errors import FatalError, RunnerError
from .worker import Worker

log = logging.getLogger("opthub_runner_admin")

EXIT_FATAL = 1
EXIT_CONFIG = 2

_NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "docker", "gql", "s3transfer")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def read_config(path: str) -> Config:
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    setup_logging(loaded.config.log_level)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return loaded.config


def install_signal_handlers(worker: Worker) -> None:
    """First SIGINT/SIGTERM drains, the second cancels the running job."""

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if worker.stopping:
            log.warning("%s again: stopping the running jobs now", name)
            worker.stop(force=True)
        else:
            log.warning(
                "%s: finishing the running jobs, then exiting (again to stop them now)", name
            )
            worker.stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run_mode(mode: str, config_path: str, dev: bool, workers: int | None = None) -> None:
    config = read_config(config_path)
    if workers is not None:
        config = dataclasses.replace(config, workers=workers)
    from .app import Options, build_worker

    try:
        worker = build_worker(mode, config, Options(dev=dev))
        install_signal_handlers(worker)
        with pidfiles.registered(mode):
            stats = worker.run()
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except FatalError as exc:
        fail(str(exc), EXIT_FATAL)
    except RunnerError as exc:
        # Transient or administrator trouble before the first job (Cognito or
        # the API unreachable at start): nothing was taken, so stop and say why.
        fail(
            f"{exc} (nothing was processed; start the runner again when this is fixed)", EXIT_FATAL
        )
    except KeyboardInterrupt:
        fail("interrupted before the runner was ready", EXIT_FATAL)
    log.info(
        "%s stopped: %d done, %d dropped, %d put back",
        mode,
        stats.done,
        stats.dropped,
        stats.retried,
    )


def _mode_command(mode: str) -> Callable[..., Any]:
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
    def command(config_path: str, dev: bool, workers: int | None) -> None:
        run_mode(mode, config_path, dev, workers)

    command.__doc__ = (
        "Evaluate submitted solutions with the problem image."
        if mode == "evaluator"
        else "Score successful evaluations with the indicator image."
    )
    return command


@click.group()
@click.version_option(__version__, prog_name="opthub-runner")
def main() -> None:
    """Evaluate and score OptHub solutions in Docker, fed by SQS and DynamoDB."""


main.command("evaluator")(_mode_command("evaluator"))
main.command("scorer")(_mode_command("scorer"))


@main.command()
def logout() -> None:
    """Forget the administrator's tokens cached on this machine."""
    from .auth.cognito import remove_token_cache

    removed = remove_token_cache()
    click.echo("Logged out." if removed else "No cached login to remove.")


@main.command()
@click.argument("mode", type=click.Choice(["evaluator", "scorer", "all"]), default="all")
@click.option("--now", is_flag=True, help="Cancel running jobs (their messages go back at once).")
@click.option(
    "--timeout", default=0.0, help="Seconds to wait for the runners to exit (0 = forever)."
)
def stop(mode: str, now: bool, timeout: float) -> None:
    """Stop the runners on this machine as SIGTERM does: finish the running job, then exit."""
    runners = pidfiles.running(None if mode == "all" else mode)
    if not runners:
        click.echo("No running opthub-runner found on this machine.")
        return
    for runner in runners:
        click.echo(f"Stopping {runner.mode} (pid {runner.pid}){' now' if now else ''}...")
        signal_runner(runner.pid, twice=now)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while any(pidfiles.running(None if mode == "all" else mode)):
        if deadline is not None and time.monotonic() > deadline:
            fail("runners still running after the timeout: stop --now cancels their jobs", 1)
        time.sleep(0.2)
    click.echo("Stopped.")


def signal_runner(pid: int, *, twice: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        if twice:
            # The second signal must arrive after the first has been handled.
            time.sleep(0.5)
            os.kill(pid, signal.SIGTERM)


@main.command()
@click.option("--solutions", default=5, show_default=True, help="Solutions to enqueue.")
@click.option("--keep", is_flag=True, help="Keep the work directory (.demo/) afterwards.")
def demo(solutions: int, keep: bool) -> None:
    """Run the evaluator and the scorer on an embedded local stack (moto + local images)."""
    from .demo.run import run_demo

    setup_logging("INFO")
    try:
        run_demo(solutions=solutions, keep=keep)
    except FatalError as exc:
        fail(str(exc), EXIT_FATAL)


if __name__ == "__main__":
    main()
