"""``opthub-runner doctor``: check a setup before the competition, one line per part."""

from __future__ import annotations

import sys

import click

from .common import EXIT_FATAL, EXIT_USAGE, fail, naming_the_file, setup_logging
from .run_commands import prompt_credentials


@click.command()
@click.option(
    "--config",
    "config_path",
    default="config.yml",
    show_default=True,
    help="YAML configuration file.",
)
@click.option("--match", "match_id", help="Also check this match's images on a sample input.")
@click.option("--dev", is_flag=True, help="Use OptHub's development stack.")
@click.option(
    "--solution",
    default="[0.0, 0.0]",
    show_default=True,
    help="The sample solution the problem image is tried on.",
)
def doctor(*, config_path: str, match_id: str | None, dev: bool, solution: str) -> None:
    """Check a setup with the runner's own start checks, one line each; exit 1 on a cross.

    Each line is a tick, a warning (!: the runner starts, and logs it) or a
    cross (the runner would not start) with the fix. Exit 0 exactly when no
    line is a cross.

    \b
    Example:
      opthub-runner doctor --config config.yml --match <match id>
    """
    from ..jobs.tryout import TryInputError, parse_json
    from ..runner.doctor import Doctor, DoctorOptions, check_config
    from ..runner.parts import build_image_trial

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
        click.echo(naming_the_file(check.line(), config_path))
        all_ok = all_ok and check.ok
    sys.exit(0 if all_ok else EXIT_FATAL)
