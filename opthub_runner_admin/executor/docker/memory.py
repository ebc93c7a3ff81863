"""The peak memory of a runner's containers, sampled from Docker while they run (for ``try``)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
import requests

#: Seconds between two samples of the container's memory use.
MEMORY_SAMPLE_INTERVAL = 0.2


class PeakMemory:
    """Samples the memory use of the containers carrying ``labels`` while they run.

    Docker reports no peak once a container is gone (and none at all under
    cgroup v2), so the highest sampled ``usage`` (or cgroup v1's
    ``max_usage``) is what there is. A container that ends between two
    samples leaves no figure: ``peak`` is then None.
    """

    def __init__(
        self,
        *,
        client: docker.DockerClient,
        labels: Mapping[str, str],
        interval: float = MEMORY_SAMPLE_INTERVAL,
    ) -> None:
        self._api: Any = client.api
        self._filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak: int | None = None

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

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
            self.peak = max(self.peak or 0, used)
