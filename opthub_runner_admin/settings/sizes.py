"""Byte sizes as operators write them (``512m``, ``2g``) and as people read them.

Docker's units are binary (``1k`` = 1024 bytes); the config follows them so
that a value copied from a ``docker run --memory`` line means the same here.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: int | str) -> int:
    """Bytes of ``value``: a whole number of bytes or text such as ``512m``, ``2g``, ``64MiB``.

    Raises ``ValueError`` with the accepted forms for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512m or 2g")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"expected a size such as 512m or 2g, got {value!r}")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def format_size(size: int) -> str:
    """``size`` bytes for a person: ``2 GiB``, ``64 MiB``, ``1.5 KiB``, ``100 bytes``."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            amount = size / factor
            text = f"{amount:.0f}" if amount == int(amount) else f"{amount:.1f}"
            return f"{text} {unit}"
    return f"{size} bytes"
