"""The first start check, the config file: read it, and what the runner says of it.

``check_config`` is ``doctor``'s first line; ``config_warnings`` is what the
runner logs at start (``cli.common.read_config``) for a config it can run
with: the two say the same.
"""

from __future__ import annotations

from ..config.loading import LoadedConfig
from ..config.schema import Config
from ..errors import ConfigError
from ..queue.base import MAX_WAIT_SECONDS
from .start_checks import Check


def poll_seconds(interval: int) -> int:
    """The long poll the worker makes of ``interval``: SQS waits 1 to 20 seconds."""
    return max(1, min(interval, MAX_WAIT_SECONDS))


def config_warnings(path: str, loaded: LoadedConfig) -> list[str]:
    """What the runner says at start about a config it can run with, one line each."""
    from pathlib import Path

    from ..config.permissions import exposed_secrets_warning

    warnings = list(loaded.warnings)
    config = loaded.config
    used = poll_seconds(config.interval)
    if used != config.interval:
        warnings.append(
            f"{path}: 'interval' is {config.interval} but an SQS long poll waits 1 to"
            f" {MAX_WAIT_SECONDS} s: {used} is used"
        )
    exposed = exposed_secrets_warning(Path(path), config)
    if exposed is not None:
        warnings.append(exposed)
    return warnings


def check_config(path: str) -> tuple[Check, Config | None]:
    """The first check: can the runner start with this file at all?"""
    from ..config.loading import load_config

    try:
        loaded = load_config(path)
    except ConfigError as exc:
        return Check("config", False, str(exc), "fix the file (see config.default.yml)"), None
    warnings = tuple(config_warnings(path, loaded))
    return Check("config", True, f"{path} is valid", warnings=warnings), loaded.config
