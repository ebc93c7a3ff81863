"""Config files pointing a runner at a local stack: ``config.yml`` and its match catalogue.

Short timeouts and intervals, DEBUG logs and a catalogue file instead of the
OptHub API: what a test or a benchmark wants of a runner it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .stack import AwsStack


def write_config(
    directory: Path, aws: AwsStack, matches: dict[str, dict[str, Any]], **overrides: Any
) -> Path:
    """A ``config.yml`` in ``directory`` on ``aws``, with a match catalogue beside it."""
    (directory / "matches.yml").write_text(yaml.safe_dump(matches))
    defaults: dict[str, Any] = {
        "matches_file": "matches.yml",
        "cache_dir": "cache",
        "interval": 1,
        "timeout": 20,
        "visibility_timeout": 10,
        "log_level": "DEBUG",
    }
    settings = aws.config(**{**defaults, **overrides})
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def match_entry(
    problem: str, indicator: str = "", env: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "problem": {"image": problem, "environment": env or {}},
        "indicator": {"image": indicator or problem, "environment": env or {}},
    }
