"""Making sure a job's image is present before its container is created."""

from __future__ import annotations

import logging
import threading
from typing import Any

import docker.errors

from .redaction import explanation, not_available

log = logging.getLogger(__name__)


class ImageProvider:
    """Inspects, and pulls if absent, once per image for the provider's life.

    A per-image lock makes concurrent jobs of one image wait for a single
    pull instead of each pulling. Failures are not remembered: the operator
    may fix them (``docker login``) while the runner runs.
    """

    def __init__(self, *, api: Any) -> None:
        self._api = api
        self._present: set[str] = set()
        self._lock = threading.Lock()
        self._pull_locks: dict[str, threading.Lock] = {}

    def ensure(self, image: str) -> None:
        with self._lock:
            if image in self._present:
                return
            pull_lock = self._pull_locks.setdefault(image, threading.Lock())
        with pull_lock:
            with self._lock:
                if image in self._present:
                    return
            self._inspect_or_pull(image)
            with self._lock:
                self._present.add(image)

    def forget(self, image: str) -> None:
        """The image was deleted behind our back: check it again at the next ``ensure``."""
        with self._lock:
            self._present.discard(image)

    def _inspect_or_pull(self, image: str) -> None:
        try:
            self._api.inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.is_server_error():
                raise
            raise not_available(image, explanation(exc)) from exc
        log.info("image %s is not present: pulling it", image)
        try:
            for event in self._api.pull(image, stream=True, decode=True):
                if isinstance(event, dict) and "error" in event:
                    raise not_available(image, str(event["error"]))
        except docker.errors.APIError as exc:
            raise not_available(image, explanation(exc)) from exc
        try:
            self._api.inspect_image(image)
        except docker.errors.ImageNotFound as exc:
            raise not_available(image, "the pull did not produce it") from exc
        log.info("pulled image %s", image)
