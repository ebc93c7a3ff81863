"""The ``opthub-runner`` command: parses arguments, wires the runner, handles signals.

Every failure an operator can meet ends here in one line on stderr and an
exit code from ``sysexits.h``, never a traceback: 78 (``EX_CONFIG``) for
what only the operator can fix (the config file, a refused password, an
unknown user pool, a queue URL that is not one), which the systemd unit
lists in ``RestartPreventExitStatus``; 1 for what may pass (the network,
Docker away), which systemd retries; 2 for a wrong command line (click's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from . import __version__, pidfiles
from .command_line import EXIT_CONFIG, EXIT_FATAL, EXIT_USAGE, fail, read_config, setup_logging
from .config import MAX_WORKERS, Config, ConfigError, load_config
from .errors import FatalError, RunnerError, SetupError
from .modes import MODES, Mode
from .runner_scope import RunnerScope, scope_of
from .worker import Worker

if TYPE_CHECKING:
    from .auth.credentials import Credentials
    from .matches import ImageSpec
    from .tryout import ImageTrial, TryResult

log = logging.getLogger("opthub_runner_admin")


def install_signal_handlers(worker: Worker) -> None:
    """First SIGINT/SIGTERM drains, the second cancels the running job.

    The handler runs on the main thread wherever it was interrupted, possibly
    inside the worker's own locked section; ``stop()`` runs in a thread of its
    own so that it never interleaves with that section.
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        force = worker.stopping
        if force:
            log.warning("%s again: stopping the running jobs now", name)
        else:
            log.warning(
                "%s: finishing the running jobs, then exiting (again to stop them now)", name
            )
        threading.Thread(target=worker.stop, kwargs={"force": force}, name="stop").start()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


#: Printed before the login prompt, word for word as the published README shows it.
ADMIN_NOTE = "Note: Make sure to authenticate using the competition administrator's account."


def prompt_credentials() -> Credentials:
    """Ask the administrator at the terminal, the password hidden, after the README's note."""
    from .auth.credentials import Credentials, no_login
    from .errors import SetupError

    click.echo(ADMIN_NOTE)
    try:
        username = str(click.prompt("Username", type=str)).strip()
        password = str(click.prompt("Password", type=str, hide_input=True))
    except click.Abort:
        raise no_login(" (the prompt was closed)") from None
    if not password:
        raise SetupError("no OptHub login: the password is empty (nothing was tried)")
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
    from .app import Options, build_monitor, build_worker

    try:
        scope = scope_of(mode.name, config)  # first: names a missing queue URL by its key
        monitor = build_monitor(mode, config)
        with contextlib.ExitStack() as resources:
            options = Options(dev=dev, prompt=prompt_credentials, events=monitor.events)
            worker = build_worker(mode, config, options, resources)
            install_signal_handlers(worker)
            with pidfiles.registered(mode.name, scope), monitor:
                stats = worker.run()
    except (ConfigError, SetupError) as exc:
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
    except OSError as exc:
        fail(f"cannot serve the status page and metrics: {exc} (check metrics_port)", EXIT_FATAL)
    log.info("%s stopped: %s", mode.name, stats.summary())


def _mode_command(mode: Mode) -> Callable[..., Any]:
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


@click.group()
@click.version_option(__version__, prog_name="opthub-runner")
def main() -> None:
    """Evaluate and score OptHub solutions in Docker, fed by SQS and DynamoDB.

    \b
    Example:
      opthub-runner doctor --config config.yml
      opthub-runner evaluator --config config.yml
    """


for _mode in MODES:
    main.command(_mode.name)(_mode_command(_mode))


@main.command()
def logout() -> None:
    """Forget the administrator's tokens cached on this machine.

    \b
    Example:
      opthub-runner logout
    """
    from .auth.token_file import remove_token_cache

    removed = remove_token_cache()
    click.echo("Logged out." if removed else "No cached login to remove.")


@main.command()
@click.argument("mode", type=click.Choice([*(m.name for m in MODES), "all"]), default="all")
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

    With --config, only the runners of that config's queue and table; without
    it, every runner of this user when they all write one table, else --all
    is needed (several competitions run here).

    \b
    Example:
      opthub-runner stop --config /etc/opthub-runner/compA.yml
    """
    if config_path is not None and every:
        fail("give --config or --all, not both", EXIT_USAGE)
    scopes = _stop_scopes(mode, config_path)
    modes = None if mode == "all" else mode

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
    modes = ("evaluator", "scorer") if mode == "all" else (mode,)
    scopes: set[RunnerScope] = set()
    for each in modes:
        with contextlib.suppress(ConfigError):  # a config for one mode only
            scopes.add(scope_of(each, config))
    if not scopes:
        fail(f"{config_path}: no queue URL for the {mode} to stop", EXIT_CONFIG)
    return frozenset(scopes)


def signal_runner(pid: int, *, twice: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        if twice:
            # The second signal must arrive after the first has been handled.
            time.sleep(0.5)
            os.kill(pid, signal.SIGTERM)


EXIT_TRIAL_FAILED = 1
EXIT_CANNOT_RUN = 3


@main.group("try")
def try_group() -> None:
    """Run a problem or indicator image exactly as the runner would (no AWS needed).

    \b
    Example:
      opthub-runner try problem my-problem:1 --solution '[1.5, -2]'
    """


def _try_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("image"),
        click.option("--config", "config_path", help="config.yml whose limits to use."),
        click.option("--match", "match_id", help="Take the environment of this match."),
        click.option("-e", "--env", "env_pairs", multiple=True, help="KEY=VALUE (repeatable)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@try_group.command("problem")
@_try_options
@click.option("--solution", help="The solution's JSON, e.g. '[1, 2]' (default: stdin).")
@click.option("--solution-file", type=click.Path(dir_okay=False), help="A file holding it.")
def try_problem(
    *,
    image: str,
    config_path: str | None,
    match_id: str | None,
    env_pairs: tuple[str, ...],
    solution: str | None,
    solution_file: str | None,
) -> None:
    """Evaluate one solution with IMAGE.

    \b
    Example:
      opthub-runner try problem my-problem:1 --solution '[1.5, -2]' -e DIMENSION=2
    """
    from . import tryout

    text = _input_text(solution, solution_file, "--solution")
    run_try(
        config_path,
        lambda trial, config: trial.problem(
            _try_image("problem", image, config, match_id, env_pairs),
            tryout.parse_json(text, "the solution"),
        ),
    )


@try_group.command("indicator")
@_try_options
@click.option("--current", required=True, help="The evaluation to score, as JSON.")
@click.option(
    "--history",
    "history_file",
    type=click.Path(dir_okay=False),
    help="A JSON file listing earlier trials (default: none).",
)
def try_indicator(
    *,
    image: str,
    config_path: str | None,
    match_id: str | None,
    env_pairs: tuple[str, ...],
    current: str,
    history_file: str | None,
) -> None:
    """Score one evaluation with IMAGE after the trials in --history.

    \b
    Example:
      opthub-runner try indicator my-indicator:1 --current '{"objective": 6.25}'
    """
    from . import tryout

    history_text = _input_text(None, history_file, "--history") if history_file else "[]"
    run_try(
        config_path,
        lambda trial, config: trial.indicator(
            _try_image("indicator", image, config, match_id, env_pairs),
            tryout.parse_current(current),
            tryout.parse_history(history_text),
        ),
    )


def _input_text(value: str | None, path: str | None, name: str) -> str:
    if value is not None and path is not None:
        fail(f"give {name} or {name}-file, not both", EXIT_USAGE)
    if value is not None:
        return value
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            fail(f"{path}: cannot read it ({exc.strerror})", EXIT_USAGE)
    if sys.stdin.isatty():
        fail(f"give {name}, {name}-file, or the JSON on standard input", EXIT_USAGE)
    return sys.stdin.read()


def _try_image(
    role: str, image: str, config: Config, match_id: str | None, env_pairs: tuple[str, ...]
) -> ImageSpec:
    from .matches import ImageSpec
    from .tryout import environment_for

    environment = environment_for(
        role, pairs=env_pairs, matches_file=config.matches_file, match_id=match_id
    )
    return ImageSpec(image=image, environment=environment)


def run_try(config_path: str | None, run: Callable[[ImageTrial, Config], TryResult]) -> None:
    """Wire ``try`` like the daemon, run it, print the report; the exit code says how it went."""
    from .app import build_image_trial
    from .matches import UnknownMatch
    from .tryout import TryInputError, report_lines

    setup_logging("WARNING")
    config = read_config(config_path) if config_path else Config(region_name="", table_name="")
    try:
        result = run(build_image_trial(config), config)
    except (TryInputError, UnknownMatch) as exc:
        fail(str(exc), EXIT_USAGE)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except RunnerError as exc:
        fail(f"the image could not be run: {exc}", EXIT_CANNOT_RUN)
    for line in report_lines(result):
        click.echo(line)
    if not result.succeeded:
        sys.exit(EXIT_TRIAL_FAILED)


@main.command()
@click.option("--config", "config_path", default="config.yml", show_default=True)
@click.option("--match", "match_id", help="Also check this match's images on a sample input.")
@click.option("--dev", is_flag=True, help="Use OptHub's development stack.")
@click.option(
    "--solution",
    default="[0.0, 0.0]",
    show_default=True,
    help="The sample solution the problem image is tried on.",
)
def doctor(*, config_path: str, match_id: str | None, dev: bool, solution: str) -> None:
    """Check a setup, one line per part with the fix; exit 1 if anything failed.

    \b
    Example:
      opthub-runner doctor --config config.yml --match <match id>
    """
    from .app import build_image_trial
    from .doctor import Doctor, DoctorOptions, check_config
    from .tryout import TryInputError, parse_json

    setup_logging("ERROR")
    try:
        sample = parse_json(solution, "--solution")
    except TryInputError as exc:
        fail(str(exc), EXIT_USAGE)
    first, config = check_config(config_path)
    click.echo(first.line())
    if config is None:
        sys.exit(EXIT_FATAL)
    options = DoctorOptions(match_id=match_id, dev=dev, solution=sample, prompt=prompt_credentials)
    all_ok = True
    for check in Doctor(config=config, options=options, image_trial=build_image_trial).checks():
        click.echo(check.line())
        all_ok = all_ok and check.ok
    sys.exit(0 if all_ok else EXIT_FATAL)


@main.command()
@click.option("--solutions", default=5, show_default=True, help="Solutions to enqueue.")
@click.option("--keep", is_flag=True, help="Keep the work directory (.demo/) afterwards.")
@click.option(
    "--serve",
    is_flag=True,
    help="Keep the stack, the runners and the status page up until Ctrl-C; print a config.yml.",
)
@click.option(
    "--port", default=8080, show_default=True, help="With --serve: the status page's port."
)
@click.option(
    "--every", default=5.0, show_default=True, help="With --serve: seconds between solutions."
)
def demo(solutions: int, keep: bool, serve: bool, port: int, every: float) -> None:
    """Run the evaluator and the scorer on an embedded local stack (moto + local images).

    \b
    Example:
      opthub-runner demo --solutions 8
      opthub-runner demo --serve --port 8080
    """
    setup_logging("INFO")
    try:
        if serve:
            from .demo.serve import serve_demo

            serve_demo(every=every, port=port)
            return
        from .demo.run import run_demo

        run_demo(solutions=solutions, keep=keep)
    except FatalError as exc:
        fail(str(exc), EXIT_FATAL)
    except OSError as exc:
        fail(f"cannot serve the demo's status page: {exc} (choose another --port)", EXIT_FATAL)


@main.group("config")
def config_group() -> None:
    """What config.yml may hold, rendered from the runner's own declarations.

    \b
    Example:
      opthub-runner config default > config.yml
    """


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of config.yml (for an editor: docs/config.schema.json).

    \b
    Example:
      opthub-runner config schema > docs/config.schema.json
    """
    from .config_docs import schema_text

    click.echo(schema_text(), nl=False)


@config_group.command("table")
def config_table() -> None:
    """Print the markdown table of every key (docs/configuration.md).

    \b
    Example:
      opthub-runner config table
    """
    from .config_docs import table

    click.echo(table(), nl=False)


@config_group.command("default")
def config_default() -> None:
    """Print a starting config.yml: every key with its default (config.default.yml).

    \b
    Example:
      opthub-runner config default > config.yml
    """
    from .config_docs import default_file

    click.echo(default_file(), nl=False)


def _add_fleet_commands() -> None:
    from .fleet.commands import dlq, status

    main.add_command(status)
    main.add_command(dlq)


_add_fleet_commands()


if __name__ == "__main__":
    main()
