"""Free space of a folder's file system (``statvfs``), for the disk the runner fills.

Docker's data root grows with every image pulled and every container's
files; the runner's state folder holds its pid files and saved state. Both
are shown (status line, page, ``doctor``, metrics) and warned about when
low, before a pull or a container start fails for lack of space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3


@dataclass(frozen=True)
class DiskSpace:
    """The file system holding ``path``: ``name`` is what it is for (``docker``, ``state``)."""

    name: str
    path: Path
    free: int
    size: int

    def describe(self) -> str:
        return f"{self.name} ({self.path}): {gib(self.free)} free of {gib(self.size)}"


def gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB"


def disk_space(name: str, path: Path) -> DiskSpace | None:
    """The space of the file system that holds ``path`` (or its nearest existing parent).

    None when nothing of it can be read (no such file system, no permission).
    """
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        found = os.statvfs(where)
    except OSError:
        return None
    return DiskSpace(
        name=name,
        path=path,
        free=found.f_bavail * found.f_frsize,
        size=found.f_blocks * found.f_frsize,
    )
