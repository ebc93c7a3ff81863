"""Docker's errors as the seam's errors, one line each, with the job's secrets blanked out.

Docker quotes the request in some errors (an invalid environment variable
comes back whole), and the match's environment holds private values: every
reason that leaves the executor goes through ``short_reason`` first.
"""

from __future__ import annotations

import docker
import docker.errors
import requests

from ...errors import RunnerError
from ...masking import redact, secret_forms
from ..base import ContainerRejected, DockerUnavailable, ImageNotAvailable, RunSpec

#: Reasons quoted from Docker or requests are cut to this many characters (one log line).
_MAX_REASON_LENGTH = 300


def translate(exc: BaseException, spec: RunSpec, *, runtime: str | None) -> RunnerError | None:
    """The seam's error for a docker-py or requests error, or None to let it through.

    A runtime that cannot create containers (crun on a hybrid-cgroup host)
    is the administrator's to fix, like a broken image: ``ContainerRejected``
    naming the runtime, never a participant's failed trial.
    """
    reason = short_reason(exc, spec)
    if isinstance(exc, docker.errors.APIError):
        # The runtime refusing the image's process (some daemons answer 500 for
        # a missing entrypoint) will not heal by retrying: it is the image's fault.
        if exc.is_server_error() and "OCI runtime" not in str(exc):
            return DockerUnavailable(f"Docker daemon error: {reason}")
        with_runtime = f" with runtime {runtime!r}" if runtime else ""
        return ContainerRejected(
            f"Docker refused to run image {spec.image!r}{with_runtime}: {reason}"
        )
    if isinstance(exc, requests.exceptions.RequestException) or "connect" in str(exc).lower():
        return DockerUnavailable(f"Docker daemon unreachable: {reason}")
    return None


def mentions_secret(exc: BaseException, spec: RunSpec) -> bool:
    """Whether the error's text quotes one of the job's environment values."""
    text = str(exc)
    return any(secret in text for secret in secret_forms(spec.environment.values()))


def not_available(image: str, reason: str) -> ImageNotAvailable:
    return ImageNotAvailable(
        f"Docker image {image!r} is not available ({reason}). Check the image name and that"
        " the runner's Docker can pull it (docker login with an account that can read it)."
    )


def explanation(exc: docker.errors.APIError) -> str:
    """Docker's own words, on one line, without the URL docker-py prepends."""
    return " ".join(str(exc.explanation or exc).split())


def short_reason(exc: BaseException, spec: RunSpec) -> str:
    """A one-line reason with the environment's values blanked out (they may be secrets)."""
    text = str(exc)
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        text = str(exc.explanation)  # without the URL and status docker-py prepends
    text = redact(text, secret_forms(spec.environment.values()))
    return " ".join(text.split())[:_MAX_REASON_LENGTH]  # redact first: a cut could split a secret
