"""Durations in the config: seconds, or text such as ``7d``, ``12h``, ``30m``, ``45s``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .kinds import Rule, refuse

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION_PATTERN = r"^\s*[0-9]+\s*[smhdw]?\s*$"


def parse_duration(value: int | str) -> int:
    """Seconds of ``value``; raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(value)
        return value
    found = re.fullmatch(r"\s*([0-9]+)\s*([smhdw]?)\s*", value)
    if found is None:
        raise ValueError(value)
    return int(found.group(1)) * UNITS[found.group(2) or "s"]


@dataclass(frozen=True)
class Duration(Rule):
    """Seconds, or text such as ``7d`` (s, m, h, d, w); at least ``minimum`` seconds."""

    kind: str = "duration"
    minimum: int = 0

    def check(self, value: Any) -> int:
        try:
            seconds = parse_duration(value) if isinstance(value, (int, str)) else -1
        except ValueError:
            seconds = -1
        if seconds < 0:
            raise refuse(f"must be seconds or a duration such as 7d or 12h, got {value!r}")
        if seconds < self.minimum:
            raise refuse(f"must be at least {self.minimum} seconds, got {value!r}")
        return seconds

    def schema(self) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "integer", "minimum": self.minimum},
                {"type": "string", "pattern": DURATION_PATTERN},
            ]
        }
