"""What every command shares: its exit codes, its one-line failure, its logging and config.

Every command module of ``cli/`` fails, logs and reads the config through
these, so that each command behaves as every other does, and none imports
``main``, which imports them all.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from ..config.loading import load_config
from ..config.schema import Config
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..observe.log_file import LogFile

log = logging.getLogger("opthub_runner_admin")

EXIT_FATAL = 1
#: sysexits.h EX_CONFIG: a restart cannot help (systemd's RestartPreventExitStatus lists it).
EXIT_CONFIG = 78
#: A wrong command line (what click itself exits with).
EXIT_USAGE = 2

_NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "docker", "gql", "s3transfer")


def setup_logging(level: str, log_format: str = "text", log_file: LogFile | None = None) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    if log_file is not None:
        from ..observe.log_file import add_rotating_file

        add_rotating_file(log_file)
    if log_format == "json":
        from ..observe.logs import JsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def fail(message: str, code: int) -> NoReturn:
    from ..observe.log_file import to_files_only

    to_files_only(logging.ERROR, " ".join(message.split()))
    click.echo("\n".join(f"Error: {line}" for line in message.splitlines()), err=True)
    sys.exit(code)


def naming_the_file(message: str, path: str) -> str:
    """``message`` with the config file's own name where the runner's parts say config.yml."""
    return re.sub(r"(?<![\w/.-])config\.yml\b", lambda _: path, message)


def read_config(path: str) -> Config:
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    config = loaded.config
    log_file = None
    if config.log_file is not None:
        from ..observe.log_file import LogFile

        log_file = LogFile(config.log_file, config.log_file_size, config.log_file_count)
    try:
        setup_logging(config.log_level, config.log_format, log_file)
    except OSError as exc:
        fail(
            f"{path}: cannot write 'log_file' {config.log_file}: {exc.strerror or exc}", EXIT_CONFIG
        )
    from ..runner.config_check import config_warnings

    for warning in config_warnings(path, loaded):
        log.warning("%s", warning)
    return loaded.config
