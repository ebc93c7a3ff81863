"""YAML as the runner reads it: safely, and a syntax error as one line naming the line.

``config.yml`` and the matches file are both read this way.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import ConfigError


def read_yaml(text: str, source: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """Parse YAML (safely: no Python objects); a syntax error names the line, in one line."""
    try:
        return yaml.load(text, Loader=loader)  # a SafeLoader (sub)class: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}{where}: YAML syntax error: {problem}") from None
