"""Making sure a job's image is present before its container is created.

``pull_policy`` says when the registry is asked:

- ``if-missing`` (default): pull only an image the daemon does not have;
- ``always``: pull a tag again when ``pull_interval`` seconds have passed
  since it was last pulled, so that a fixed image pushed under the same tag
  is picked up without a restart; an image pinned by digest never changes
  and is pulled only when missing;
- ``never``: only use images already present (an air-gapped host whose
  images the operator loads with ``docker load``).

Concurrent jobs of one image share one look-up or pull (one lock per image),
and its failure: jobs that waited for a pull that failed fail with it.
A pull that cannot succeed by trying again soon (the repository or tag does
not exist, access is denied, no registry answers) fails at once: the job
fails and its match backs off, so that the other matches' jobs are not held
up by seconds of retries inside it. Any other failed pull (a registry's 5xx,
a timeout) is retried with backoff; after the last attempt it is reported
with the image's name, except that ``always`` falls back to a local copy
when there is one (and warns). Failures are never remembered, so a
``docker login`` done while the runner runs helps at the next pull: the
client's credentials are re-read from the Docker config file before every
pull (docker-py otherwise keeps the first non-empty config it read).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker.errors

from ..base import Cancelled, ImageNotAvailable
from .errors import explanation, not_available

log = logging.getLogger(__name__)

PULL_POLICIES = ("always", "if-missing", "never")


@dataclass(frozen=True)
class ImagePolicy:
    """When to pull; see the module docstring."""

    pull_policy: str = "if-missing"
    #: With ``always``: seconds during which a pulled (or tried) tag is not pulled again.
    pull_interval: float = 300.0
    #: Pull attempts before the failure is reported (or ``always`` falls back).
    pull_attempts: int = 3
    #: Seconds before the second attempt; doubled before each further one.
    pull_backoff: float = 1.0

    def __post_init__(self) -> None:
        if self.pull_policy not in PULL_POLICIES:
            raise ValueError(f"pull_policy must be one of {', '.join(PULL_POLICIES)}")
        if self.pull_attempts < 1:
            raise ValueError("pull_attempts must be at least 1")


#: Docker's words for a pull that fails the same way when tried again at once.
FINAL_PULL_ERRORS = (
    "not found",
    "manifest unknown",
    "repository does not exist",
    "pull access denied",
    "unauthorized",
    "denied",
    "no basic auth credentials",
    "authentication required",
    "connection refused",
    "no such host",
    "invalid reference format",
)


def pull_is_final(reason: str) -> bool:
    """Whether a failed pull (Docker's reason) cannot succeed by trying again at once."""
    lowered = reason.lower()
    return any(words in lowered for words in FINAL_PULL_ERRORS)


#: The policy of a runner whose configuration says nothing about pulls.
DEFAULT_IMAGE_POLICY = ImagePolicy()


class ImageProvider:
    """Applies an ``ImagePolicy``; thread-safe, one flight per image."""

    def __init__(
        self,
        *,
        api: Any,
        policy: ImagePolicy = DEFAULT_IMAGE_POLICY,
        clock: Callable[[], float] = time.monotonic,
        on_pulled: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._policy = policy
        self._clock = clock
        #: Told of every completed pull (the runner's metrics count them).
        self._on_pulled = on_pulled
        #: image -> when it was last found present or (re)pulled.
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()
        self._flights: dict[str, threading.Lock] = {}
        #: image -> flights ended, and the last one's failure: jobs that waited for a
        #: failing flight share its failure (a later job tries again).
        self._flown: dict[str, int] = {}
        self._failures: dict[str, ImageNotAvailable] = {}

    def ensure(self, image: str, cancel: threading.Event) -> None:
        """Return once ``image`` may be used; raise ``ImageNotAvailable`` if it may not."""
        if self._fresh(image):
            return
        with self._lock:
            flight = self._flights.setdefault(image, threading.Lock())
            flown = self._flown.get(image, 0)
        with flight:
            if self._fresh(image):
                return  # another job did it while we waited
            with self._lock:
                failure = self._failures.get(image) if self._flown.get(image, 0) != flown else None
            if failure is not None:
                # The pull this job waited for just failed: the same answer, not another pull.
                raise ImageNotAvailable(str(failure)) from failure
            try:
                self._refresh(image, cancel)
            except ImageNotAvailable as exc:
                with self._lock:
                    self._flown[image] = self._flown.get(image, 0) + 1
                    self._failures[image] = exc
                raise
            with self._lock:
                self._flown[image] = self._flown.get(image, 0) + 1
                self._failures.pop(image, None)
                self._checked[image] = self._clock()

    def forget(self, image: str) -> None:
        """The image was deleted behind our back: check it again at the next ``ensure``."""
        with self._lock:
            self._checked.pop(image, None)

    def _fresh(self, image: str) -> bool:
        with self._lock:
            checked = self._checked.get(image)
        if checked is None:
            return False
        if not self._repulls(image):
            return True
        return self._clock() - checked < self._policy.pull_interval

    def _repulls(self, image: str) -> bool:
        return self._policy.pull_policy == "always" and "@" not in image

    def _refresh(self, image: str, cancel: threading.Event) -> None:
        if self._repulls(image):
            self._pull_or_keep_local(image, cancel)
        elif self._present(image):
            return
        elif self._policy.pull_policy == "never":
            raise not_available(image, "it is not present and pull_policy is never")
        else:
            log.info("image %s is not present: pulling it", image)
            self._pull(image, cancel)

    def _pull_or_keep_local(self, image: str, cancel: threading.Event) -> None:
        try:
            self._pull(image, cancel)
        except ImageNotAvailable as exc:
            if not self._present(image):
                raise
            log.warning(
                "could not pull image %s: running the local copy, pulling again in %ss (%s)",
                image,
                self._policy.pull_interval,
                exc,
            )

    def _present(self, image: str) -> bool:
        try:
            self._api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.is_server_error():
                raise
            raise not_available(image, explanation(exc)) from exc
        return True

    def _pull(self, image: str, cancel: threading.Event) -> None:
        """Pull, retrying what may pass; the last failure leaves as ``ImageNotAvailable``."""
        delay = self._policy.pull_backoff
        attempts = self._policy.pull_attempts
        for attempt in range(1, attempts + 1):
            try:
                self._pull_once(image)
            except _PullFailed as failed:
                exc = not_available(image, failed.reason)
                if attempt == attempts or pull_is_final(failed.reason):
                    raise exc from failed.__cause__
                # INFO: the last failure is reported by the caller, with the image's name.
                log.info(
                    "pull of image %s failed (attempt %d of %d, next in %ss): %s",
                    image,
                    attempt,
                    attempts,
                    delay,
                    failed.reason,
                )
                if cancel.wait(delay):
                    raise Cancelled(f"pull of {image} cancelled") from exc
                delay *= 2
            else:
                log.info("pulled image %s", image)
                if self._on_pulled is not None:
                    self._on_pulled(image)
                return

    def _pull_once(self, image: str) -> None:
        # Credentials from a `docker login` done since the last pull.
        self._api.reload_config()
        try:
            for event in self._api.pull(image, stream=True, decode=True):
                if isinstance(event, dict) and "error" in event:
                    raise _PullFailed(str(event["error"]))
        except docker.errors.APIError as exc:
            raise _PullFailed(explanation(exc)) from exc
        if not self._present(image):
            raise _PullFailed("the pull did not produce it")


class _PullFailed(Exception):
    """One pull attempt failed, for Docker's ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
