"""A running container's peak memory and CPU time, read from its cgroup as it runs.

Where the cgroup and its files are is ``cgroup_layout``'s. The cgroup goes away
as soon as the container's last process exits, before Docker reports the exit:
its files cannot be read at the end. So ``UsageWatch``
holds a pidfd of the container's first process (``cgroup.procs``), which
becomes readable the moment that process exits, and reads the figures then,
while runc has not yet removed the cgroup; when the main process of a pid
namespace exits, the kernel kills the rest, so that moment is the run's end.
Meanwhile it reads them every ``LAST_INTERVAL`` in case that last reading
comes too late. Without a pidfd (Linux before 5.3), it reads them more often
at first (every ``FIRST_INTERVAL``) and then at about a hundredth of the time
run so far, up to ``LAST_INTERVAL``. The peak memory is the kernel's own
high-water mark, so a late reading misses only what the last interval added;
the CPU time misses at most the CPU of the last interval.

Each reading also takes the kernel's count of the processes it killed for the
memory limit (``oom_kill`` in ``memory.events``, v2, or ``memory.oom_control``,
v1). Docker's ``OOMKilled`` comes from an event of containerd that may reach the
daemon after the exit it explains (containerd 1.6 sends them in no set order):
the count does not depend on that order, but its last reading may come after
the cgroup went on a busy machine (10 runs in 100 under six busy loops on two
cores), so the executor takes a memory kill from either.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
from dataclasses import dataclass

from .cgroup_layout import CgroupFiles, CgroupLayout

#: Seconds between the first readings of a running container's figures.
FIRST_INTERVAL = 0.005
#: Longest pause between two readings.
LAST_INTERVAL = 0.1
#: The pause between readings is this share of the time run so far (within the bounds above).
INTERVAL_SHARE = 0.01
#: Why a run of a few milliseconds may have no figures.
ENDED_FIRST = "not measured: the container ended before its first reading"
#: The base URL docker-py gives a daemon reached on this host's unix socket.
LOCAL_DOCKER_URL = "http+docker://localhost"


@dataclass(frozen=True)
class Reading:
    """One reading of a container's cgroup: bytes and CPU seconds."""

    memory: int
    cpu_seconds: float


def read_figures(files: CgroupFiles, descriptors: tuple[int, int]) -> Reading:
    """One reading through open ``descriptors`` (memory, cpu); OSError once the cgroup is gone."""
    memory = int(os.pread(descriptors[0], 64, 0).split()[0])
    raw = os.pread(descriptors[1], 4096, 0)
    if files.version == 2:
        for line in raw.decode("ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec":
                return Reading(memory, int(value) / 1e6)
        raise OSError(errno.ENODATA, "cpu.stat has no usage_usec")
    return Reading(memory, int(raw.split()[0]) / 1e9)


def read_memory_kills(descriptor: int) -> int | None:
    """The ``oom_kill`` count of an open events file; None if it has none (before Linux 4.13).

    OSError once the cgroup is gone.
    """
    for line in os.pread(descriptor, 4096, 0).decode("ascii").splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    return None


@dataclass(frozen=True)
class Figures:
    """What a watch came to: the peak memory and the CPU time, or why there are none."""

    peak_memory: int | None
    cpu_seconds: float | None
    not_measured: str = ""
    #: Processes the kernel killed for the memory limit, as last read (None: not read).
    memory_kills: int | None = None


class UsageWatch:
    """Reads one running container's cgroup until it is gone or ``finish`` is called.

    ``start`` takes the first reading in the caller's thread (a run of a few
    milliseconds has a figure too) and goes on in a thread of its own.
    """

    def __init__(self, *, files: CgroupFiles) -> None:
        self._files = files
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._descriptors: tuple[int, int] | None = None
        self._events: int | None = None
        self._kills: int | None = None
        self._exit: int | None = None
        self._peak: int | None = None
        self._cpu: float | None = None
        self._began = time.monotonic()

    def start(self) -> UsageWatch:
        try:
            memory = os.open(self._files.memory, os.O_RDONLY)
        except OSError:
            return self  # the container is gone already
        try:
            cpu = os.open(self._files.cpu, os.O_RDONLY)
        except OSError:
            os.close(memory)
            return self
        self._descriptors = (memory, cpu)
        try:
            self._events = os.open(self._files.events, os.O_RDONLY) if self._files.events else None
        except OSError:
            self._events = None  # no memory events here: the figures stand without the count
        if self._read():
            self._exit = _main_process(self._files.procs)
            self._thread = threading.Thread(target=self._watch, name="usage-watch", daemon=True)
            self._thread.start()
        return self

    def _read(self) -> bool:
        """Take one reading; False once the cgroup is gone."""
        if self._descriptors is None:
            return False
        try:
            reading = read_figures(self._files, self._descriptors)
        except (OSError, ValueError, IndexError):
            return False
        self._peak = max(self._peak or 0, reading.memory)
        self._cpu = max(self._cpu or 0.0, reading.cpu_seconds)
        if self._events is not None:
            try:
                kills = read_memory_kills(self._events)
            except (OSError, ValueError):
                kills = None
            if kills is not None:
                self._kills = max(self._kills or 0, kills)
        return True

    def _watch(self) -> None:
        if self._exit is not None:
            self._watch_exit(self._exit)
            return
        while True:
            ran = time.monotonic() - self._began
            pause = min(LAST_INTERVAL, max(FIRST_INTERVAL, ran * INTERVAL_SHARE))
            if self._stop.wait(pause) or not self._read():
                return

    def _watch_exit(self, pidfd: int) -> None:
        """Read every ``LAST_INTERVAL``, and at once when the main process exits."""
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not self._stop.is_set():
            exited = bool(poller.poll(LAST_INTERVAL * 1000))
            if not self._read() or exited:
                return

    def finish(self) -> Figures:
        """Stop reading (one last reading if the cgroup is still there) and say what was read."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._read()
        if self._descriptors is not None:
            for descriptor in self._descriptors:
                os.close(descriptor)
            self._descriptors = None
        if self._events is not None:
            os.close(self._events)
            self._events = None
        if self._exit is not None:
            os.close(self._exit)
            self._exit = None
        if self._peak is None or self._cpu is None:
            return Figures(None, None, ENDED_FIRST)
        note = "" if self._files.memory_is_peak else "peak memory: the highest memory.current read"
        return Figures(self._peak, self._cpu, note, self._kills)


def _main_process(procs: str) -> int | None:
    """A pidfd of the cgroup's first process, or None (no pidfd here, or no process)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None or not procs:
        return None
    try:
        with open(procs, encoding="ascii") as listing:
            first = listing.readline().strip()
        return int(pidfd_open(int(first)))
    except (OSError, ValueError):
        return None


def remote_reason(base_url: str) -> str | None:
    """Why the cgroups of the daemon at ``base_url`` cannot be read here, or None (local)."""
    if base_url == LOCAL_DOCKER_URL:
        return None
    scheme, _, rest = base_url.partition("://")
    # docker-py writes ssh and Windows pipes as http+docker://ssh, http+docker://localnpipe.
    how = rest.split("/", 1)[0] if scheme == "http+docker" else scheme
    return (
        f"not measured: Docker is reached over {how or 'another transport'}, not this host's"
        " unix socket, so its containers' cgroups are not on this machine"
    )


class UsageMeter:
    """Starts a ``UsageWatch`` on each run's container, or says why it cannot.

    ``unavailable`` is the reason none can be read (a remote daemon:
    ``remote_reason``); else each container's files are looked up in ``layout``.
    """

    def __init__(
        self, *, layout: CgroupLayout | None = None, unavailable: str | None = None
    ) -> None:
        self._layout = layout or CgroupLayout()
        self._unavailable = unavailable

    @classmethod
    def for_daemon(cls, base_url: str, *, layout: CgroupLayout | None = None) -> UsageMeter:
        return cls(layout=layout, unavailable=remote_reason(base_url))

    def start(self, container_id: str) -> UsageWatch | Figures:
        """A started watch, or the figures' absence with its reason."""
        if self._unavailable:
            return Figures(None, None, self._unavailable)
        files = self._layout.files(container_id) if container_id else None
        if files is None and self._layout.looks_known:
            return Figures(None, None, ENDED_FIRST)
        if files is None:
            return Figures(
                None,
                None,
                "not measured: no cgroup of the container was found on this machine (a cgroup"
                " layout the runner does not know, or the runner in another cgroup namespace)",
            )
        return UsageWatch(files=files).start()


def finish(watch: UsageWatch | Figures) -> Figures:
    """The figures of a watch ``UsageMeter.start`` gave."""
    return watch.finish() if isinstance(watch, UsageWatch) else watch
