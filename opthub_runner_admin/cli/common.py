"""What every command shares: its exit codes, its one-line failure, its logging and config.

Every command module of ``cli/`` fails, logs and reads the config through
these, so that each command behaves as every other does, and none imports
``main``, which imports them all.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

from ..config.loading import load_config
from ..config.schema import Config
from ..errors import ConfigError

log = logging.getLogger("opthub_runner_admin")

EXIT_FATAL = 1
#: sysexits.h EX_CONFIG: a restart cannot help (systemd's RestartPreventExitStatus lists it).
EXIT_CONFIG = 78
#: A wrong command line (what click itself exits with).
EXIT_USAGE = 2

_NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "docker", "gql", "s3transfer")


def setup_logging(level: str, log_format: str = "text") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    if log_format == "json":
        from ..observe.logs import JsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def fail(message: str, code: int) -> NoReturn:
    click.echo("\n".join(f"Error: {line}" for line in message.splitlines()), err=True)
    sys.exit(code)


def read_config(path: str) -> Config:
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    setup_logging(loaded.config.log_level, loaded.config.log_format)
    from ..runner.start_checks import config_warnings

    for warning in config_warnings(path, loaded):
        log.warning("%s", warning)
    return loaded.config
