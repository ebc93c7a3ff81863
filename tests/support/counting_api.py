"""The real low-level Docker client, counting the pulls it was asked for."""

from __future__ import annotations

import threading
from typing import Any


class CountingApi:
    """Wraps docker-py's ``APIClient``: every call passes through, pulls are counted."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self.pulls = 0
        self._lock = threading.Lock()

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.pulls += 1
        return self._api.pull(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class ClientOf:
    """What ``DockerExecutor`` needs of a ``DockerClient``: its ``api``."""

    def __init__(self, api: Any) -> None:
        self.api = api
