"""The log in a file as well, rotated by size: tmux keeps none once its scrollback is gone.

``logging.handlers.RotatingFileHandler`` renames ``runner.log`` to
``runner.log.1`` (and so on, up to ``count``) when it reaches ``size`` bytes:
the disk holds at most ``size * (count + 1)`` bytes of log, for a season.
Every handler of the root logger gets the same format (text or JSON), so the
file says what the terminal says.
"""

from __future__ import annotations

import logging
import logging.handlers
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LogFile:
    """Where the log goes besides the terminal, and how much of it is kept."""

    path: Path
    size: int
    count: int


def add_rotating_file(log_file: LogFile) -> logging.Handler:
    """Add a rotating file handler to the root logger, formatted as its first handler.

    Raises ``OSError`` when the file cannot be opened (a missing folder, no right to write).
    """
    root = logging.getLogger()
    handler = logging.handlers.RotatingFileHandler(
        log_file.path, maxBytes=log_file.size, backupCount=log_file.count, encoding="utf-8"
    )
    if root.handlers:
        handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    return handler


def to_files_only(level: int, message: str) -> None:
    """Write ``message`` to the log files only: the terminal already shows it (``Error:``)."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
    if not files:
        return
    record = root.makeRecord("opthub_runner_admin", level, "", 0, message, (), None)
    for handler in files:
        handler.handle(record)
