"""``opthub-runner try``: run a problem or indicator image exactly as the runner would."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config.schema import Config
from ..errors import ConfigError, RunnerError
from .common import EXIT_CONFIG, EXIT_USAGE, fail, read_config, setup_logging

if TYPE_CHECKING:
    from ..jobs.tryout import ImageTrial, TryResult
    from ..matches import ImageSpec, MatchSource


#: Read when present: ``try`` needs no AWS, so without it the keys' defaults are used.
DEFAULT_CONFIG = "config.yml"
EXIT_TRIAL_FAILED = 1
EXIT_CANNOT_RUN = 3


@click.group("try")
def try_group() -> None:
    """Run a problem or indicator image exactly as the runner would (no AWS needed).

    \b
    Example:
      opthub-runner try problem my-problem:1 --solution '[1.5, -2]'
    """


def _try_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("image"),
        click.option(
            "--config",
            "config_path",
            default=DEFAULT_CONFIG,
            show_default=True,
            help="YAML configuration file whose limits (and match source) to use; without"
            " one, the defaults.",
        ),
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
    from ..jobs import tryout

    text = _input_text(solution, solution_file, "--solution")
    try:  # before Docker is asked anything
        variable = tryout.parse_json(text, "the solution")
    except tryout.TryInputError as exc:
        fail(str(exc), EXIT_USAGE)
    run_try(
        config_path,
        lambda trial, config: trial.problem(
            _try_image("problem", image, config, match_id, env_pairs), variable
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
    from ..jobs import tryout

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
    from ..jobs.tryout import environment_for
    from ..matches import ImageSpec

    def api() -> MatchSource:
        from ..runner.parts import Options, build_matches
        from .run_commands import prompt_credentials

        return build_matches(config, Options(prompt=prompt_credentials))

    environment = environment_for(
        role,
        pairs=env_pairs,
        matches_file=config.matches_file,
        match_id=match_id,
        matches=api if config.region_name else None,
    )
    return ImageSpec(image=image, environment=environment)


def run_try(config_path: str | None, run: Callable[[ImageTrial, Config], TryResult]) -> None:
    """Wire ``try`` like the daemon, run it, print the report; the exit code says how it went."""
    from ..jobs.tryout import TryInputError, report_lines
    from ..matches import UnknownMatch
    from ..runner.parts import build_image_trial

    setup_logging("WARNING")
    given = config_path is not None and (
        config_path != DEFAULT_CONFIG or Path(config_path).exists()
    )
    config = (
        read_config(config_path)
        if config_path is not None and given
        else Config(region_name="", table_name="")
    )
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
