"""The peak memory of a runner's containers while they run (for ``try``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from .cgroup_layout import CgroupLayout

#: Seconds between two samples of the container's memory use.
MEMORY_SAMPLE_INTERVAL = 0.2
#: Seconds between two reads of the container's own peak in its cgroup (a file read).
CGROUP_READ_INTERVAL = 0.002


class PeakMemory:
    """The peak memory use of the containers carrying ``labels``, while they run.

    Best: the container's own peak, kept by the kernel in its cgroup
    (``memory.peak`` on cgroup v2, ``memory.max_usage_in_bytes`` on v1),
    read every few milliseconds from the moment Docker announces the start
    (its events), so that a run of a few milliseconds has a figure too.
    Else (Docker on another host, an unknown layout): the highest ``docker
    stats`` sample, which a short run ends before. ``note`` says which, or
    why there is no figure.
    """

    def __init__(
        self,
        *,
        client: docker.DockerClient,
        labels: Mapping[str, str],
        interval: float = MEMORY_SAMPLE_INTERVAL,
        layout: CgroupLayout | None = None,
    ) -> None:
        self._api: Any = client.api
        self._filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        self._interval = interval
        #: Where the kernel keeps the peak (``cgroups``: the runs' own figures read it too).
        self._layout = layout or CgroupLayout()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._events: Any = None
        self._sampled: int | None = None
        self._kernel: int | None = None
        self._kernel_file = ""
        self._started = False

    @property
    def peak(self) -> int | None:
        return self._kernel if self._kernel is not None else self._sampled

    @property
    def note(self) -> str:
        if self._kernel is not None:
            return f"the container's own {self._kernel_file.rsplit('/', 1)[-1]}"
        if self._sampled is not None:
            return "highest docker stats sample; the kernel's own peak is not readable here"
        if self._started and not self._kernel_file:
            return (
                "not measured: this machine cannot read the container's cgroup (Docker runs"
                " on another host, or in a layout the runner does not know) and the container"
                " ended before docker stats had a sample"
            )
        return "not measured: the container ended before its first reading"

    def __enter__(self) -> PeakMemory:
        self._stop.clear()
        self._sampled = self._kernel = None
        self._kernel_file, self._started = "", False
        # Subscribed before the run starts: the start event cannot be missed.
        self._events = self._api.events(
            filters={**self._filters, "type": ["container"], "event": ["start"]}, decode=True
        )
        self._threads = [
            threading.Thread(target=self._sample, name="peak-memory", daemon=True),
            threading.Thread(target=self._watch, name="peak-memory-cgroup", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self._events.close()  # unblocks the events thread
        for thread in self._threads:
            thread.join(timeout=10)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                for info in self._api.containers(filters=self._filters):
                    self._record(self._api.stats(info["Id"], stream=False, one_shot=True))
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                pass  # the container ended meanwhile, or Docker is busy: try the next sample
            self._stop.wait(self._interval)

    def _record(self, stats: Mapping[str, Any]) -> None:
        memory = stats.get("memory_stats") or {}
        used = max(int(memory.get("max_usage") or 0), int(memory.get("usage") or 0))
        if used > 0:
            self._sampled = max(self._sampled or 0, used)

    def _watch(self) -> None:
        """For each start Docker announces, read the container's cgroup peak until it is gone."""
        try:
            for event in self._events:
                if self._stop.is_set():
                    return
                container_id = str(event.get("id") or (event.get("Actor") or {}).get("ID") or "")
                if container_id:
                    self._started = True
                    self._read_kernel_peak(container_id)
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            return  # the stream was closed at the exit, or Docker went away

    def _read_kernel_peak(self, container_id: str) -> None:
        candidates: list[str] = []
        while not self._stop.is_set():
            if not candidates:
                files = self._layout.files(container_id)
                candidates = [files.memory] if files is not None else []
            for path in candidates:
                try:
                    value = int(Path(path).read_text(encoding="ascii").split()[0])
                except (OSError, ValueError, IndexError):
                    continue
                self._kernel_file = path
                self._kernel = max(self._kernel or 0, value)
                candidates = [path]  # found: read only this one from now on
                break
            else:
                if self._kernel_file:
                    return  # the cgroup is gone with the container: the last read stands
                # Not created yet, or never readable here: look again until the run ends.
            self._stop.wait(CGROUP_READ_INTERVAL)
