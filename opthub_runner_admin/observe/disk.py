"""The disk watch: free space of Docker's data root and of the runner's state folder.

Every ``interval`` seconds it reads each folder's file system (``statvfs``)
and reports it to the observers (metrics ``opthub_runner_disk_free_bytes``
and ``opthub_runner_disk_size_bytes``, the status line, the page). When one
falls under ``warn_below`` bytes it logs ONE warning naming it and what to
do, and warns again only after it was above the threshold in between.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from ..host.disk import DiskSpace, disk_space, gib
from .events import JobEvents

log = logging.getLogger(__name__)

#: Seconds between two looks at the disks.
INTERVAL = 60.0


class DiskWatch:
    """A daemon thread sampling the disks until ``stop``; ``sample`` alone is one look."""

    def __init__(
        self,
        *,
        paths: Mapping[str, Path],
        events: JobEvents,
        warn_below: int,
        interval: float = INTERVAL,
        read: Callable[[str, Path], DiskSpace | None] = disk_space,
    ) -> None:
        self._paths = dict(paths)
        self._events = events
        self._warn_below = warn_below
        self._interval = interval
        self._read = read
        self._low: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="disk-watch", daemon=True)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def sample(self) -> list[DiskSpace]:
        """Read every disk once, report it, warn of one newly under the threshold."""
        found: list[DiskSpace] = []
        for name, path in self._paths.items():
            space = self._read(name, path)
            if space is None:
                continue
            found.append(space)
            self._events.disk_space(space)
            if space.free < self._warn_below:
                if name not in self._low:
                    self._low.add(name)
                    log.warning(
                        "disk: %s, under disk_warning_below (%s): free some space (docker image"
                        " prune, or set image_cleanup_after) before pulls and container starts"
                        " fail",
                        space.describe(),
                        gib(self._warn_below),
                    )
            else:
                self._low.discard(name)
        return found

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sample()
            except Exception:  # a failed look must never stop the runner
                log.debug("cannot read the disks' free space", exc_info=True)
