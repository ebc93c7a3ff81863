"""Where a container's cgroup is, and which of its files hold its figures.

Docker puts each container in a cgroup of its own, named by the container's
id: ``docker/<id>`` with its ``cgroupfs`` driver, ``system.slice/docker-<id>.scope``
with its ``systemd`` driver, under the daemon's ``--cgroup-parent`` when it
has one (found by a short search, then remembered). cgroup v2 keeps the
figures in one folder (``memory.peak``, Linux 5.19+, and ``cpu.stat``'s
``usage_usec``); cgroup v1 in one folder per controller
(``memory/.../memory.max_usage_in_bytes`` and ``cpuacct/.../cpuacct.usage``,
in nanoseconds). Only the daemon's own host can read them. Reading them as the
container runs is ``cgroups``'s.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

#: Where the cgroup hierarchies are mounted.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: A container's cgroup under a hierarchy's root, by Docker's cgroup driver (cgroupfs, systemd).
CONTAINER_DIRS = ("docker/{id}", "system.slice/docker-{id}.scope")
#: How deep the search for a container's cgroup in an unknown layout goes.
SEARCH_DEPTH = 3


@dataclass(frozen=True)
class CgroupFiles:
    """The files of one container's cgroup that hold its figures.

    ``memory`` is the peak (``memory.peak``, ``memory.max_usage_in_bytes``),
    or ``memory.current`` on a cgroup v2 kernel without ``memory.peak``
    (``memory_is_peak`` False: the highest reading stands for the peak).
    ``cpu`` is ``cpu.stat`` (v2, microseconds) or ``cpuacct.usage`` (v1,
    nanoseconds).
    """

    memory: str
    cpu: str
    version: int
    memory_is_peak: bool = True
    #: The cgroup's process list (its first line: the container's main process).
    procs: str = ""
    #: The memory controller's event counts, whose ``oom_kill`` line is the kernel's kills.
    events: str = ""


class CgroupLayout:
    """Finds a container's cgroup files under ``root``; thread-safe.

    The folder under a hierarchy's root where a container's cgroup was last
    found (a daemon's own ``--cgroup-parent``) is remembered and looked in first.
    Only until one is found does a miss search the tree: once the layout is
    known, a container whose cgroup is missing has ended already (``found_any``).
    """

    def __init__(self, *, root: Path = CGROUP_ROOT) -> None:
        self._root = root
        self._learned: str | None = None
        self._found_any = False
        self._docker_seen = False
        self._lock = threading.Lock()

    @property
    def found_any(self) -> bool:
        """Some container's cgroup was found here: the layout is known."""
        with self._lock:
            return self._found_any

    @property
    def version(self) -> int | None:
        """2 (unified), 1 (one hierarchy per controller), None (nothing mounted here)."""
        if (self._root / "cgroup.controllers").exists():
            return 2
        if (self._root / "memory").is_dir():
            return 1
        return None

    def files(self, container_id: str) -> CgroupFiles | None:
        """The figures' files of the container, or None if no cgroup of it is found."""
        version = self.version
        if version == 2:
            folder = self._folder(self._root, container_id)
            if folder is None:
                return None
            peak = folder / "memory.peak"
            memory, is_peak = (peak, True) if peak.exists() else (folder / "memory.current", False)
            procs, events = str(folder / "cgroup.procs"), str(folder / "memory.events")
            return CgroupFiles(str(memory), str(folder / "cpu.stat"), 2, is_peak, procs, events)
        if version == 1:
            folder = self._folder(self._root / "memory", container_id)
            if folder is None:
                return None
            relative = folder.relative_to(self._root / "memory")
            for controller in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
                cpu = self._root / controller / relative / "cpuacct.usage"
                if cpu.exists():
                    listing = str(folder / "cgroup.procs")
                    peak_file = str(folder / "memory.max_usage_in_bytes")
                    events = str(folder / "memory.oom_control")
                    return CgroupFiles(peak_file, str(cpu), 1, procs=listing, events=events)
        return None

    def _folder(self, hierarchy: Path, container_id: str) -> Path | None:
        with self._lock:
            learned, known = self._learned, self._found_any
        templates = ((learned,) if learned else ()) + CONTAINER_DIRS
        for template in templates:
            folder = hierarchy / template.format(id=container_id)
            if folder.is_dir():
                with self._lock:
                    self._found_any = True
                return folder
        if known:
            return None  # the layout is known: this container has ended already
        # Docker's default folders may be there and still not be this daemon's: another
        # daemon on the host, or this one's --cgroup-parent. Only a container found tells.
        found = _search(hierarchy, container_id, SEARCH_DEPTH)
        if found is not None:
            with self._lock:
                self._learned = str(found.relative_to(hierarchy)).replace(container_id, "{id}")
                self._found_any = True
        elif _docker_folders(hierarchy):
            with self._lock:
                self._docker_seen = True
        return found

    @property
    def looks_known(self) -> bool:
        """A container's cgroup was found here, or Docker's default folders are here.

        A container not found then most likely ended before its first reading.
        """
        with self._lock:
            return self._found_any or self._docker_seen


def _docker_folders(hierarchy: Path) -> bool:
    """Whether Docker's own folders are in ``hierarchy`` (cgroupfs's, or a systemd scope)."""
    if (hierarchy / "docker").is_dir():
        return True
    return any((hierarchy / "system.slice").glob("docker-*.scope"))


def _search(folder: Path, container_id: str, depth: int) -> Path | None:
    """A folder at most ``depth`` below ``folder`` whose name holds ``container_id``."""
    try:
        children = [child for child in folder.iterdir() if child.is_dir()]
    except OSError:
        return None
    for child in children:
        if container_id in child.name:
            return child
    if depth > 1:
        for child in children:
            found = _search(child, container_id, depth - 1)
            if found is not None:
                return found
    return None
